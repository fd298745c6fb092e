//! Dates as the reader writes them, in their browser's locale (through the
//! browser's `Intl`): for the portal's pages and the link viewer alike.

use js_sys::wasm_bindgen::JsValue;

use super::{When, parse};

/// A date from Unix seconds, in the browser's locale.
pub fn format_date(unix_secs: i64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(unix_secs as f64 * 1000.0));
    String::from(date.to_locale_date_string("default", &JsValue::UNDEFINED))
}

/// A date and time from Unix seconds, in the browser's locale.
pub fn format_datetime(unix_secs: i64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(unix_secs as f64 * 1000.0));
    String::from(date.to_locale_string("default", &JsValue::UNDEFINED))
}

/// A FHIR date or date-time as the reader writes dates (their browser's
/// locale): "15 Apr 1994" or "Apr 15, 1994", "Apr 1994", "1994", and an
/// instant with its time in the reader's time zone; the text as it is if
/// it is none of these.
pub fn format_fhir_date(text: &str) -> String {
    // A calendar day or month is in no time zone: shown as UTC, it stays
    // the day it was written.
    let day = |year: i32, month: u8, day: u8| {
        js_sys::Date::utc(f64::from(year), f64::from(month - 1)) + f64::from(day - 1) * 86_400_000.0
    };
    match parse(text) {
        Some(When::Year(year)) => year.to_string(),
        Some(When::Month { year, month }) if year >= 100 => format(Style::Month, day(year, month, 1)),
        Some(When::Day { year, month, day: d }) if year >= 100 => format(Style::Day, day(year, month, d)),
        Some(When::Instant { unix_ms }) => format(Style::Instant, unix_ms),
        _ => text.to_owned(),
    }
}

#[derive(Clone, Copy)]
enum Style {
    Month,
    Day,
    Instant,
}

thread_local! {
    /// One `Intl.DateTimeFormat` per style, made once: making one is most
    /// of the cost of formatting a date, and a chart or a summary formats
    /// hundreds.
    static FORMATS: [js_sys::Function; 3] = [Style::Month, Style::Day, Style::Instant].map(formatter);
}

fn formatter(style: Style) -> js_sys::Function {
    let pairs: &[(&str, &str)] = match style {
        Style::Month => &[("timeZone", "UTC"), ("month", "short"), ("year", "numeric")],
        Style::Day => &[("timeZone", "UTC"), ("day", "numeric"), ("month", "short"), ("year", "numeric")],
        Style::Instant => {
            &[("day", "numeric"), ("month", "short"), ("year", "numeric"), ("hour", "numeric"), ("minute", "2-digit")]
        }
    };
    let options = js_sys::Object::new();
    for (key, value) in pairs {
        let _ = js_sys::Reflect::set(&options, &JsValue::from_str(key), &JsValue::from_str(value));
    }
    js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &options).format()
}

/// Unix milliseconds in `style`.
fn format(style: Style, unix_ms: f64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(unix_ms));
    FORMATS
        .with(|f| f[style as usize].call1(&JsValue::UNDEFINED, &date).ok().and_then(|s| s.as_string()))
        .unwrap_or_default()
}
