//! Colour for skiffctl's own outputs (`get -w --diff`, `tree`,
//! `cluster-info`), only on a terminal and never with `NO_COLOR` set, so
//! what scripts read stays plain. kubectl's own formats are never coloured.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Colour {
    Green = 32,
    Yellow = 33,
    Red = 31,
}

/// Whether stdout should get colour now.
pub fn enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in `colour` when `on`.
pub fn paint(text: &str, colour: Colour, on: bool) -> String {
    if on {
        format!("\x1b[0;{}m{text}\x1b[0m", colour as u8)
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_unless_asked() {
        assert_eq!(paint("Ready", Colour::Green, false), "Ready");
        assert_eq!(
            paint("Ready", Colour::Green, true),
            "\u{1b}[0;32mReady\u{1b}[0m"
        );
        assert_eq!(
            paint("gone", Colour::Red, true),
            "\u{1b}[0;31mgone\u{1b}[0m"
        );
    }
}
