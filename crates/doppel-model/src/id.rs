//! Identifiers of models, twins, signals and relation kinds. They appear in URLs, MQTT topics
//! and line protocol, so they are restricted to characters that need no escaping anywhere.

/// Longest accepted identifier, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Checks an identifier: 1 to 128 characters from `A-Z a-z 0-9 _ - . :`, not starting with
/// `.`. Returns a human-readable reason when it is not acceptable.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("must be at most {MAX_ID_LEN} characters"));
    }
    if id.starts_with('.') {
        return Err("must not start with '.'".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "contains {c:?}; allowed are letters, digits and _ - . :"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_ids() {
        for id in ["pump-1", "site.A:line_2", "P101", "a"] {
            assert!(validate_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_bad_ids() {
        for id in [
            "",
            ".hidden",
            "with space",
            "slash/x",
            "plus+",
            "hash#",
            &"x".repeat(129),
        ] {
            assert!(validate_id(id).is_err(), "{id}");
        }
    }

    proptest! {
        #[test]
        fn accepted_ids_are_topic_and_url_safe(id in "\\PC{0,40}") {
            if validate_id(&id).is_ok() {
                prop_assert!(!id.contains('/') && !id.contains('+') && !id.contains('#'));
                prop_assert!(!id.contains('?') && !id.contains('%') && !id.contains(' '));
            }
        }
    }
}
