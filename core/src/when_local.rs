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
    let options = |pairs: &[(&str, &str)]| {
        let object = js_sys::Object::new();
        for (key, value) in pairs {
            let _ = js_sys::Reflect::set(&object, &JsValue::from_str(key), &JsValue::from_str(value));
        }
        JsValue::from(object)
    };
    // A calendar day or month is in no time zone: shown as UTC, it stays
    // the day it was written.
    let day = |year: i32, month: u8, day: u8| {
        js_sys::Date::new(&JsValue::from_f64(
            js_sys::Date::utc(f64::from(year), f64::from(month - 1)) + f64::from(day - 1) * 86_400_000.0,
        ))
    };
    match parse(text) {
        Some(When::Year(year)) => year.to_string(),
        Some(When::Month { year, month }) if year >= 100 => String::from(day(year, month, 1).to_locale_date_string(
            "default",
            &options(&[("timeZone", "UTC"), ("month", "short"), ("year", "numeric")]),
        )),
        Some(When::Day { year, month, day: d }) if year >= 100 => {
            String::from(day(year, month, d).to_locale_date_string(
                "default",
                &options(&[("timeZone", "UTC"), ("day", "numeric"), ("month", "short"), ("year", "numeric")]),
            ))
        }
        Some(When::Instant { unix_ms }) => {
            String::from(js_sys::Date::new(&JsValue::from_f64(unix_ms)).to_locale_string(
                "default",
                &options(&[
                    ("day", "numeric"),
                    ("month", "short"),
                    ("year", "numeric"),
                    ("hour", "numeric"),
                    ("minute", "2-digit"),
                ]),
            ))
        }
        _ => text.to_owned(),
    }
}
