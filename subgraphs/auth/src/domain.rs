//! Validated values: what a well-formed email, password and display name are.

use crate::error::Error;

/// The longest password accepted. Long enough for any passphrase or manager-generated
/// secret (OWASP asks for at least 64), short enough that nobody can make us hash megabytes.
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_DISPLAY_NAME_CHARS: usize = 60;

/// An email address, trimmed and lower-cased so `Ann@X.org` and `ann@x.org` are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let normalised = raw.trim().to_lowercase();
        if normalised.len() > 254 {
            return Err(Error::invalid(
                "email",
                "email is too long (at most 254 characters)",
            ));
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            &normalised,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        );
        match parsed {
            Ok(addr) if addr.domain().contains('.') && !addr.domain().ends_with('.') => {
                Ok(Email(normalised))
            }
            _ => Err(Error::invalid(
                "email",
                "enter a valid email address, like name@example.com",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy. Never logged, never stored.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str, email: &Email) -> Result<Self, Error> {
        let chars = raw.chars().count();
        if chars > MAX_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                format!("password is too long (at most {MAX_PASSWORD_CHARS} characters)"),
            ));
        }
        if chars < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                format!(
                    "password is too short: use at least {MIN_PASSWORD_CHARS} characters (a few words make a good one)"
                ),
            ));
        }
        if raw.trim().is_empty() || raw.chars().all(|c| c == raw.chars().next().unwrap_or(c)) {
            return Err(Error::invalid(
                "password",
                "password is too easy to guess: do not repeat one character",
            ));
        }
        let lower = raw.to_lowercase();
        let local = email.as_str().split('@').next().unwrap_or_default();
        if lower == email.as_str() || (local.len() >= 4 && lower.contains(local)) {
            return Err(Error::invalid(
                "password",
                "password must not contain your email address",
            ));
        }
        if COMMON.iter().any(|c| lower == *c) {
            return Err(Error::invalid(
                "password",
                "this password is among the most common ones; choose another",
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A small deny-list of the most used passwords of policy length.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "password123",
    "password12",
    "1q2w3e4r5t",
    "qwerty1234",
    "iloveyou12",
    "passw0rd12",
    "abcdefghij",
    "0987654321",
    "1111111111",
    "letmein123",
    "welcome123",
    "administrator",
    "qwertyuiop123",
    "password1234",
];

/// How a user is shown to others.
#[derive(Debug, Clone)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(Error::invalid(
                "displayName",
                "display name must not be empty",
            ));
        }
        if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(Error::invalid(
                "displayName",
                format!("display name is too long (at most {MAX_DISPLAY_NAME_CHARS} characters)"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "displayName",
                "display name must not contain control characters",
            ));
        }
        Ok(DisplayName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("ann@example.com").unwrap()
    }

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.org",
            "ann@localhost",
            "a b@x.org",
            "ann@x.org.",
            "Ann <ann@x.org>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@x.org", "a".repeat(300))).is_err());
    }

    #[test]
    fn password_policy_explains_itself() {
        assert!(Password::parse("correct horse battery", &email()).is_ok());
        let msg = |p: &str| {
            Password::parse(p, &email())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg("short").contains("too short"));
        assert!(msg(&"x".repeat(10_000)).contains("too long"));
        assert!(msg("aaaaaaaaaaaa").contains("repeat"));
        assert!(msg("ann@example.com").contains("email"));
        assert!(msg("password123").contains("common"));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ann   Lee ").unwrap().as_str(),
            "Ann Lee"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"n".repeat(61)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
    }
}
