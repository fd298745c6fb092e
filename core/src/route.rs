//! Where the portal goes after signing in: back to the page a signed-out
//! visitor opened (`/signin?next=/records`), never anywhere else.

/// The `next` parameter of a query string (`?a=b&next=/records`), if it is
/// a plain path of this app: only letters, digits, `/`, `-` and `_`,
/// starting with one `/` (so no scheme, host, `//`, `\`, encoded bytes,
/// query or fragment can take the browser off the app), and not the
/// sign-in page itself.
pub fn next_after_sign_in(search: &str) -> Option<&str> {
    let next = search.strip_prefix('?').unwrap_or(search).split('&').find_map(|pair| pair.strip_prefix("next="))?;
    let plain = next.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b));
    (plain && next.starts_with('/') && !next.starts_with("//") && next != "/signin").then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_the_app_is_kept() {
        assert_eq!(next_after_sign_in("?next=/records"), Some("/records"));
        assert_eq!(next_after_sign_in("?x=1&next=/sharing"), Some("/sharing"));
        assert_eq!(next_after_sign_in("next=/ledger"), Some("/ledger"));
        assert_eq!(next_after_sign_in("?next=/records/a-b_c9"), Some("/records/a-b_c9"));
    }

    #[test]
    fn anything_that_could_leave_the_app_is_dropped() {
        for search in [
            "",
            "?",
            "?next=",
            "?nextx=/records",
            "?next=records",
            "?next=//evil.example",
            "?next=/\\evil.example",
            "?next=https://evil.example",
            "?next=/%2F%2Fevil.example",
            "?next=javascript:alert(1)",
            "?next=/records?x=1",
            "?next=/records#top",
            "?next=/signin",
            "?next=/réc",
            "?next=/ records",
        ] {
            assert_eq!(next_after_sign_in(search), None, "{search:?}");
        }
    }
}
