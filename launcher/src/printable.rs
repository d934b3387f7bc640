//! Strings a bundle or a node controls (manifest fields, test names, check
//! evidence, node output), made safe to print for a person: every control
//! character is shown escaped, so none reaches a terminal as an escape
//! sequence that could rewrite the screen, hide a line or set the title.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with each control character (C0, DEL, C1) written as `\x1b` or
/// `\u{9b}`; everything else as it is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("archy-gate 1.0 ✓"), "archy-gate 1.0 ✓");
        assert_eq!(printable("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(printable("x\u{9b}31m\r\n"), "x\\u{9b}31m\\x0d\\x0a");
    }
}
