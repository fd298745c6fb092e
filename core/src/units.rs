//! Units as people write them: the UCUM codes FHIR quantities carry
//! (`mm[Hg]`, `10*3/uL`, `kg/m2`, `{score}`) in the form a reader expects
//! (`mmHg`, `×10³/µL`, `kg/m²`, `score`).

/// The readable form of a UCUM unit; text that is not UCUM comes back as it
/// was (so a unit a record spells out itself is kept).
pub fn readable(ucum: &str) -> String {
    let ucum = ucum.trim();
    let whole = match ucum {
        "mm[Hg]" => Some("mmHg"),
        "Cel" => Some("°C"),
        "[degF]" => Some("°F"),
        "[lb_av]" => Some("lb"),
        "[in_i]" => Some("in"),
        "[ft_i]" => Some("ft"),
        "[oz_av]" => Some("oz"),
        "/min" | "{beats}/min" | "{beat}/min" => Some("per minute"),
        "{breaths}/min" | "{breath}/min" => Some("breaths per minute"),
        "1" => Some(""),
        _ => None,
    };
    if let Some(w) = whole {
        return w.to_owned();
    }
    ucum.split('/').map(readable_term).collect::<Vec<_>>().join("/")
}

/// One term between slashes: `10*3`, `uL`, `m2`, `{1.73_m2}`.
fn readable_term(term: &str) -> String {
    if let Some(note) = term.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        // An annotation: its words, with any unit inside made readable.
        return note.split('_').map(readable_term).collect::<Vec<_>>().join(" ");
    }
    if let Some(exponent) = term.strip_prefix("10*") {
        return format!("×10{}", superscript(exponent));
    }
    let micro = match term.strip_prefix('u') {
        Some(rest) if ["L", "g", "mol", "m", "IU", "U"].contains(&rest) => format!("µ{rest}"),
        _ => term.to_owned(),
    };
    // A power on a unit: m2 → m², cm3 → cm³ (not the digits of a number).
    let digits = micro.trim_end_matches(|c: char| c.is_ascii_digit());
    if !digits.is_empty() && digits.len() < micro.len() && digits.chars().all(|c| c.is_ascii_alphabetic()) {
        return format!("{digits}{}", superscript(&micro[digits.len()..]));
    }
    micro
}

fn superscript(digits: &str) -> String {
    digits
        .chars()
        .map(|c| match c {
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            '9' => '⁹',
            '-' => '⁻',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_in_the_sample_records_read_as_people_write_them() {
        for (ucum, want) in [
            ("mm[Hg]", "mmHg"),
            ("kg", "kg"),
            ("kg/m2", "kg/m²"),
            ("mg/dL", "mg/dL"),
            ("mmol/L", "mmol/L"),
            ("%", "%"),
            ("{score}", "score"),
            ("10*3/uL", "×10³/µL"),
            ("10*6/uL", "×10⁶/µL"),
            ("mL/min/{1.73_m2}", "mL/min/1.73 m²"),
            ("U/L", "U/L"),
            ("g/dL", "g/dL"),
            ("fL", "fL"),
            ("pg/mL", "pg/mL"),
            ("Cel", "°C"),
            ("[lb_av]", "lb"),
            ("/min", "per minute"),
            ("{breaths}/min", "breaths per minute"),
            ("ug/L", "µg/L"),
            ("cm", "cm"),
        ] {
            assert_eq!(readable(ucum), want, "{ucum}");
        }
    }

    #[test]
    fn text_that_is_not_ucum_is_kept() {
        for text in ["", "kilograms", "beats per minute", "units", "{", "}", "10*", "/", "a//b", "µg", "m²"] {
            let out = readable(text);
            assert!(!out.is_empty() || text.is_empty(), "{text:?} -> {out:?}");
        }
        assert_eq!(readable("kilograms"), "kilograms");
        assert_eq!(readable("  kg "), "kg");
        assert_eq!(readable("1"), "");
        assert_eq!(readable("mg/{"), "mg/{");
    }
}
