//! The app's addresses: which page a path shows ([`Page::of`]), and where
//! the app goes after signing in: back to the page a signed-out visitor
//! opened (`/signin?next=/records`), never anywhere else.

/// The app's pages, by the first segment of the path. The pages with
/// selections keep their deeper addresses (`/records/<id>`); any other
/// deeper path is not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Home,
    SignUp,
    SignIn,
    Restore,
    Ledger,
    Records,
    Credentials,
    Sharing,
    Links,
    /// The emergency card (printable; its QR code opens the summary).
    EmergencyCard,
    /// Emergency contacts (an invitation link opens it: `#accept=…`).
    Emergency,
    Inbox,
    NotFound,
}

impl Page {
    /// The page at `path` (a URL's path, without query or fragment).
    pub fn of(path: &str) -> Self {
        let path = path.strip_prefix('/').unwrap_or(path);
        let (first, deeper) = match path.split_once('/') {
            Some((first, _)) => (first, true),
            None => (path, false),
        };
        match first {
            "records" => Self::Records,
            "sharing" => Self::Sharing,
            "ledger" => Self::Ledger,
            _ if deeper => Self::NotFound,
            "" | "account" => Self::Home,
            "signup" => Self::SignUp,
            "signin" => Self::SignIn,
            "restore" => Self::Restore,
            "credentials" | "clinicians" => Self::Credentials,
            "inbox" => Self::Inbox,
            "links" => Self::Links,
            "emergency-card" => Self::EmergencyCard,
            "emergency" => Self::Emergency,
            _ => Self::NotFound,
        }
    }
}

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
    fn each_path_shows_its_page() {
        let cases = [
            ("/", Page::Home),
            ("", Page::Home),
            ("/account", Page::Home),
            ("/signup", Page::SignUp),
            ("/signin", Page::SignIn),
            ("/restore", Page::Restore),
            ("/records", Page::Records),
            ("/records/0x01ab", Page::Records),
            ("/records/", Page::Records),
            ("/sharing/0xabc", Page::Sharing),
            ("/ledger/0x12", Page::Ledger),
            ("/credentials", Page::Credentials),
            ("/clinicians", Page::Credentials),
            ("/inbox", Page::Inbox),
            ("/links", Page::Links),
            ("/emergency-card", Page::EmergencyCard),
            ("/emergency", Page::Emergency),
        ];
        for (path, page) in cases {
            assert_eq!(Page::of(path), page, "{path:?}");
        }
    }

    #[test]
    fn unknown_and_deeper_paths_are_not_found() {
        for path in ["/nope", "/account/x", "/inbox/1", "/signin/", "//records", "/Records", "/records%2Fx", "/\u{0}"] {
            assert_eq!(Page::of(path), Page::NotFound, "{path:?}");
        }
    }

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
