//! Name validation for tasks, groups and hosts.
//!
//! Names become znode path segments, so anything that could escape its parent
//! (`..`, `/`) or confuse tools is rejected before a znode is touched.

/// Longest accepted name.
pub const MAX_NAME_LEN: usize = 128;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {0} characters long, the limit is 128")]
    TooLong(usize),
    #[error("name `{0}` is reserved")]
    Reserved(String),
    #[error("name `{name}` has `{bad}`; only letters, digits, `_`, `.` and `-` are allowed")]
    BadCharacter { name: String, bad: char },
}

/// Checks `name` against `[A-Za-z0-9_.-]{1,128}`, not `.` nor `..`.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong(len));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(NameError::BadCharacter {
            name: name.to_string(),
            bad,
        });
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_names() {
        for n in ["orders", "a", "A-b_c.9", &"x".repeat(128), "..."] {
            assert_eq!(validate_name(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_name(&"x".repeat(129)),
            Err(NameError::TooLong(129))
        );
        assert!(matches!(validate_name("."), Err(NameError::Reserved(_))));
        assert!(matches!(validate_name(".."), Err(NameError::Reserved(_))));
        for n in ["../x", "a/b", "a b", "é", "a\0", "a:b"] {
            assert!(
                matches!(validate_name(n), Err(NameError::BadCharacter { .. })),
                "{n}"
            );
        }
    }

    #[test]
    fn error_names_the_problem() {
        let e = validate_name("a/b").unwrap_err().to_string();
        assert!(e.contains("`/`"), "{e}");
    }
}
