//! Markdown descriptions to HTML, safely.
//!
//! Descriptions come from contracts we may not have written, so raw HTML in them is shown as
//! text (pulldown-cmark would pass it through), and links keep only harmless schemes. Headings
//! are moved down under the page's own outline and get an id and a permalink like every other
//! heading on the page.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::Ids;

/// Renders `text` as HTML. `shift` moves headings down (`#` becomes `h{1 + shift}`, at most
/// `h6`); `id_prefix` starts the ids of those headings.
pub(crate) fn to_html(text: &str, shift: usize, id_prefix: &str, ids: &mut Ids) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events: Vec<Event<'_>> = Vec::new();
    // While inside a heading: its level and the events so far (to make an id from its text).
    let mut heading: Option<(usize, Vec<Event<'_>>)> = None;
    for event in Parser::new_ext(text, options) {
        let event = match event {
            // Raw HTML is shown, never interpreted.
            Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
            Event::Start(Tag::HtmlBlock) | Event::End(TagEnd::HtmlBlock) => continue,
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Image {
                link_type,
                dest_url: safe_url(dest_url),
                title,
                id,
            }),
            other => other,
        };
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((heading_number(level), Vec::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((number, inner)) = heading.take() {
                    let level = (number + shift).min(6);
                    let text: String = inner
                        .iter()
                        .filter_map(|event| match event {
                            Event::Text(text) | Event::Code(text) => Some(text.as_ref()),
                            _ => None,
                        })
                        .collect();
                    let id = ids.unique(&format!("{id_prefix}-{text}"));
                    events.push(Event::Html(CowStr::from(format!("<h{level} id=\"{id}\">"))));
                    events.extend(inner);
                    events.push(Event::Html(CowStr::from(format!(
                        " <a class=\"anchor\" href=\"#{id}\" aria-label=\"Permalink\">#</a></h{level}>\n"
                    ))));
                }
            }
            Event::Start(Tag::Table(alignments)) => {
                events.push(Event::Html(CowStr::Borrowed("<div class=\"scroll\">")));
                events.push(Event::Start(Tag::Table(alignments)));
            }
            Event::End(TagEnd::Table) => {
                events.push(Event::End(TagEnd::Table));
                events.push(Event::Html(CowStr::Borrowed("</div>\n")));
            }
            other => match &mut heading {
                Some((_, inner)) => inner.push(other),
                None => events.push(other),
            },
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    html
}

/// Renders a short text: one paragraph loses its `<p>` so it can sit in a table cell.
pub(crate) fn inline_html(text: &str, ids: &mut Ids) -> String {
    let html = to_html(text, 3, "text", ids);
    let trimmed = html.trim_end();
    match trimmed
        .strip_prefix("<p>")
        .and_then(|rest| rest.strip_suffix("</p>"))
    {
        Some(inner) if !inner.contains("<p>") => inner.to_owned(),
        _ => html,
    }
}

fn heading_number(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Keeps web, mail and relative links; anything else (`javascript:`, `data:` ...) becomes `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let path_start = lower.find(['/', '?', '#']).unwrap_or(lower.len());
    match scheme_end {
        Some(end) if end < path_start => {
            if ["http", "https", "mailto", "ws", "wss"].contains(&&lower[..end]) {
                url
            } else {
                CowStr::Borrowed("#")
            }
        }
        _ => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_escaped_and_bad_links_dropped() {
        let mut ids = Ids::default();
        let html = to_html(
            "<script>alert(1)</script>\n\nhi <b>x</b> [a](javascript:alert(1)) [b](https://x.org)",
            1,
            "t",
            &mut ids,
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(html.contains("href=\"#\""), "{html}");
        assert!(html.contains("href=\"https://x.org\""), "{html}");
    }

    #[test]
    fn headings_get_ids_and_move_down() {
        let mut ids = Ids::default();
        let html = to_html("## Close codes\n\ntext", 1, "info", &mut ids);
        assert!(
            html.starts_with("<h3 id=\"info-close-codes\">Close codes <a class=\"anchor\""),
            "{html}"
        );
    }
}
