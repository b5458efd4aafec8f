//! Channel addresses with `{name}` parameters, matched exactly.
//!
//! An address segment may mix parameters and text (`TRADE-{exchange}--{base}--{quote}`,
//! `c{type}`, MQTT-style `lights.{id}.measured`), which a router's whole-segment parameters
//! cannot read. The generator declares each address as a [`Template`] of text and parameter
//! pieces; this module does the matching, so the generated code only declares. Written here
//! rather than taken from a crate: it is a few lines of backtracking over literal text, and a
//! regular-expression engine would add a dependency to do the same.

/// One piece of an address: literal text, or a `{name}` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Text that must appear as written.
    Text(&'static str),
    /// A parameter: one or more characters, never a `/`.
    Param(&'static str),
}

/// An address split into [`Piece`]s, e.g. `/rooms/{room}` is `[Text("/rooms/"), Param("room")]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pieces: &'static [Piece],
}

impl Template {
    /// A template of `pieces`, in address order; `const`, so the generated code declares each
    /// channel's address as a `static`.
    pub const fn new(pieces: &'static [Piece]) -> Template {
        Template { pieces }
    }

    /// The pieces, in address order (text to match as written, parameters to read).
    pub fn pieces(&self) -> &'static [Piece] {
        self.pieces
    }

    /// The parameters of `text` if it matches the template exactly (the whole text, every
    /// literal piece as written), in template order; `None` otherwise.
    ///
    /// Where text between parameters could be read in several ways (`{a}-{b}` on `x-y-z`), the
    /// leftmost reading wins (`a` = `x`, `b` = `y-z`), as a lazy regular expression would.
    pub fn parse<'t>(&self, text: &'t str) -> Option<Vec<(&'static str, &'t str)>> {
        let mut values = Vec::new();
        match_pieces(self.pieces, text, &mut values).then_some(values)
    }
}

/// The address as the contract writes it (`/rooms/{room}`), for messages.
impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for piece in self.pieces {
            match piece {
                Piece::Text(text) => f.write_str(text)?,
                Piece::Param(name) => write!(f, "{{{name}}}")?,
            }
        }
        Ok(())
    }
}

fn match_pieces<'t>(
    pieces: &[Piece],
    text: &'t str,
    values: &mut Vec<(&'static str, &'t str)>,
) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return text.is_empty();
    };
    match first {
        Piece::Text(literal) => text
            .strip_prefix(literal)
            .is_some_and(|tail| match_pieces(rest, tail, values)),
        Piece::Param(name) => {
            // A parameter ends before the first `/`, and is never empty.
            let limit = text.find('/').unwrap_or(text.len());
            for (end, _) in text[..limit].char_indices().skip(1).chain([(limit, ' ')]) {
                if limit == 0 {
                    break;
                }
                values.push((name, &text[..end]));
                if match_pieces(rest, &text[end..], values) {
                    return true;
                }
                values.pop();
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TRADE: Template = Template::new(&[
        Piece::Text("/markets/TRADE-"),
        Piece::Param("exchange"),
        Piece::Text("--"),
        Piece::Param("base"),
        Piece::Text("--"),
        Piece::Param("quote"),
    ]);

    #[test]
    fn mixed_segments_match_exactly() {
        assert_eq!(
            TRADE.parse("/markets/TRADE-kraken--BTC--EUR"),
            Some(vec![
                ("exchange", "kraken"),
                ("base", "BTC"),
                ("quote", "EUR")
            ])
        );
        for wrong in [
            "/markets/TRADE-kraken--BTC",
            "/markets/TRADE-kraken-BTC-EUR",
            "/markets/TRADEkraken--BTC--EUR",
            "/markets/TRADE---BTC--EUR",
            "/markets/TRADE-kraken--BTC--EUR/more",
            "/markets/TRADE-kra/ken--BTC--EUR",
            "/other/TRADE-kraken--BTC--EUR",
        ] {
            assert_eq!(TRADE.parse(wrong), None, "{wrong} should not match");
        }
    }

    #[test]
    fn templates_print_as_written() {
        assert_eq!(
            TRADE.to_string(),
            "/markets/TRADE-{exchange}--{base}--{quote}"
        );
    }

    #[test]
    fn the_leftmost_reading_wins_and_text_may_end_the_template() {
        static DOTTED: Template = Template::new(&[
            Piece::Text("lights."),
            Piece::Param("id"),
            Piece::Text(".measured"),
        ]);
        assert_eq!(
            DOTTED.parse("lights.a.b.measured"),
            Some(vec![("id", "a.b")])
        );
        assert_eq!(DOTTED.parse("lights..measured"), None);
        static PAIR: Template =
            Template::new(&[Piece::Param("a"), Piece::Text("-"), Piece::Param("b")]);
        assert_eq!(PAIR.parse("x-y-z"), Some(vec![("a", "x"), ("b", "y-z")]));
    }
}
