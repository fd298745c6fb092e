//! FHIR dates as records write them (`date`, `dateTime`, `instant`), read
//! to the precision they carry, so that a page can show them the way its
//! reader writes dates ("15 Apr 1994", "Apr 15, 1994") instead of
//! "1994-04-15T09:30:00+02:00".

/// Formatting in the browser's locale (wasm only: the browser's `Intl`).
#[cfg(target_arch = "wasm32")]
#[path = "when_local.rs"]
pub mod local;

/// A FHIR date or date-time, to the precision written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// `1994`.
    Year(i32),
    /// `1994-04`.
    Month { year: i32, month: u8 },
    /// `1994-04-15`: a calendar day, in no time zone.
    Day { year: i32, month: u8, day: u8 },
    /// `1994-04-15T09:30:00+02:00`: an instant, as milliseconds since the
    /// Unix epoch (the reader's clock shows it in their own time zone).
    Instant { unix_ms: f64 },
}

/// Reads a FHIR `date`, `dateTime` or `instant` (the specification's
/// regular expressions: years 0001–9999, a time only with a day and then
/// with seconds and a zone, a zone of `Z` or ±hh:mm up to 14:00). `None`
/// for anything else, including impossible days such as 1994-02-30.
pub fn parse(text: &str) -> Option<When> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)? as i32;
    if year == 0 {
        return None;
    }
    if b.len() == 4 {
        return Some(When::Year(year));
    }
    if b.get(4) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)? as u8;
    if !(1..=12).contains(&month) {
        return None;
    }
    if b.len() == 7 {
        return Some(When::Month { year, month });
    }
    if b.get(7) != Some(&b'-') {
        return None;
    }
    let day = digits(b, 8, 2)? as u8;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if b.len() == 10 {
        return Some(When::Day { year, month, day });
    }
    // T hh:mm:ss[.fraction] zone
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    let second = digits(b, 17, 2)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0.0;
    if b[at] == b'.' {
        let start = at + 1;
        let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if end == start || end - start > 9 {
            return None;
        }
        millis = format!("0.{}", &text[start..end]).parse::<f64>().ok()? * 1000.0;
        at = end;
    }
    let offset_minutes: i64 = match &b[at..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let (h, m) = (digits(rest, 0, 2)?, digits(rest, 3, 2)?);
            if m > 59 || h > 14 || (h == 14 && m != 0) {
                return None;
            }
            let minutes = (h * 60 + m) as i64;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year.into(), month.into(), day.into());
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_minutes * 60;
    Some(When::Instant { unix_ms: seconds as f64 * 1000.0 + millis })
}

/// The `n` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given day of the proleptic Gregorian
/// calendar (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_precision() {
        assert_eq!(parse("1994"), Some(When::Year(1994)));
        assert_eq!(parse("1994-04"), Some(When::Month { year: 1994, month: 4 }));
        assert_eq!(parse("1994-04-15"), Some(When::Day { year: 1994, month: 4, day: 15 }));
        assert_eq!(parse("2000-02-29"), Some(When::Day { year: 2000, month: 2, day: 29 }));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(When::Instant { unix_ms: 0.0 }));
        // 2019-04-15T09:30:00+02:00 is 07:30 UTC: 1555313400 s.
        assert_eq!(parse("2019-04-15T09:30:00+02:00"), Some(When::Instant { unix_ms: 1_555_313_400_000.0 }));
        assert_eq!(parse("2019-04-15T09:30:00-05:00"), Some(When::Instant { unix_ms: 1_555_338_600_000.0 }));
        assert_eq!(parse("2019-04-15T07:30:00.250Z"), Some(When::Instant { unix_ms: 1_555_313_400_250.0 }));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(When::Instant { unix_ms: -1000.0 }));
    }

    #[test]
    fn refuses_what_fhir_does_not_allow() {
        for bad in [
            "",
            "94",
            "0000",
            "19944",
            "1994-4",
            "1994-13",
            "1994-00",
            "1994-04-31",
            "1994-02-29",
            "1900-02-29",
            "1994-04-00",
            "1994/04/15",
            "1994-04-15T",
            "1994-04-15T09:30",
            "1994-04-15T09:30:00",
            "1994-04-15T24:00:00Z",
            "1994-04-15T09:60:00Z",
            "1994-04-15T09:30:61Z",
            "1994-04-15T09:30:00+15:00",
            "1994-04-15T09:30:00+14:30",
            "1994-04-15T09:30:00+0200",
            "1994-04-15T09:30:00.Z",
            "1994-04-15T09:30:00.1234567890Z",
            "1994-04-15T09:30:00Zjunk",
            "1994-04-15 09:30:00Z",
            "١٩٩٤-04-15",
            "1994-04-15T09:30:00+02:0x",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_sample_date_reads() {
        let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
            .join("../fixtures/fhir");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bundle = std::fs::read_to_string(entry.path()).unwrap();
            for item in crate::fhir::split_import(&bundle).unwrap() {
                let value: serde_json::Value = serde_json::from_str(&item.json).unwrap();
                if let Some(date) = crate::summary::summarize(&value).date {
                    assert!(parse(&date).is_some(), "{date}");
                    seen += 1;
                }
            }
        }
        assert!(seen > 1000, "{seen}");
    }
}
