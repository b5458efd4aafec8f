//! Snapshots of the HTML docs.
//!
//! Small fixtures (one concern each, `fixtures/docs/`) are snapshotted as the page's `<main>`
//! HTML: the exact markup is what they are about. The real contract and the shared corpus are
//! snapshotted as a text outline (headings, table rows, definition lists, examples): whole
//! pages would be tens of kilobytes of markup per document and every CSS tweak would touch all
//! of them, while the outline changes only when a fact on the page does. The committed
//! `docs/index.html` is checked against the contract here too, like `cargo xtask docs --check`.

use std::path::{Path, PathBuf};

use wfs_codegen::{Contract, docs};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo_root() -> PathBuf {
    manifest_dir().parent().unwrap().to_path_buf()
}

fn render(path: &Path) -> String {
    let contract = Contract::load(path).unwrap_or_else(|error| panic!("{error}"));
    docs::render(&contract).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The `<main>` element: fixtures are about content, not about the shared CSS and script.
fn main_part(html: &str) -> &str {
    let start = html.find("<main").expect("a <main> element");
    let end = html.find("</main>").expect("a </main> tag") + "</main>".len();
    &html[start..end]
}

/// A text outline of a page: headings, table rows, definitions, example captions and bodies.
fn outline(html: &str) -> String {
    let main = main_part(html);
    let mut out = String::new();
    let mut capture: Option<String> = None;
    let mut cells: Vec<String> = Vec::new();
    let mut term = String::new();
    let mut skip_anchor = false;
    let mut depth = 0;
    let mut rest = main;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        if !skip_anchor && let Some(buffer) = &mut capture {
            buffer.push_str(&unescape(text));
        }
        let close = rest[open..]
            .find('>')
            .map(|i| open + i)
            .unwrap_or(rest.len() - 1);
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        match (name.as_str(), closing) {
            ("a", false) if tag.contains("class=\"anchor\"") => skip_anchor = true,
            // Nesting in property tables shows as dots before the field.
            ("tr", false) => {
                depth = tag
                    .split("--d:")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
            }
            ("a", true) => skip_anchor = false,
            (
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "td" | "th" | "dt" | "dd" | "figcaption"
                | "pre",
                false,
            ) => capture = Some(String::new()),
            ("br", _) if capture.is_some() => capture.as_mut().unwrap().push_str("; "),
            ("div" | "p", false) if capture.is_some() => capture.as_mut().unwrap().push(' '),
            (heading @ ("h1" | "h2" | "h3" | "h4" | "h5" | "h6"), true) => {
                let level: usize = heading[1..].parse().unwrap();
                let text = squeeze(&capture.take().unwrap_or_default());
                out.push_str(&format!("\n{} {text}\n", "#".repeat(level)));
            }
            ("td" | "th", true) => {
                let text = squeeze(&capture.take().unwrap_or_default());
                let dots = if cells.is_empty() {
                    "·".repeat(depth)
                } else {
                    String::new()
                };
                cells.push(format!("{dots}{text}"));
            }
            ("tr", true) => {
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
                cells.clear();
            }
            ("dt", true) => term = squeeze(&capture.take().unwrap_or_default()),
            ("dd", true) => {
                let text = squeeze(&capture.take().unwrap_or_default());
                out.push_str(&format!("- {term}: {text}\n"));
            }
            ("figcaption", true) => {
                let text = squeeze(&capture.take().unwrap_or_default());
                out.push_str(&format!("example: {text}\n"));
            }
            ("pre", true) => {
                let text = squeeze(&capture.take().unwrap_or_default());
                out.push_str(&format!("    {text}\n"));
            }
            _ => {}
        }
    }
    out.trim_start().to_owned()
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn fixture(name: &str) -> PathBuf {
    manifest_dir()
        .join("tests/fixtures/docs")
        .join(format!("{name}.yaml"))
}

macro_rules! fixture_tests {
    ($($test:ident => $file:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            let html = render(&fixture($file));
            insta::assert_snapshot!(stringify!($test), main_part(&html));
        }
    )*};
}

fixture_tests! {
    fixture_markdown_safety => "markdown-safety",
    fixture_nested_payload => "nested-payload",
    fixture_combinators => "combinators",
    fixture_recursion => "recursion",
    fixture_generated_example => "generated-example",
    fixture_ws_bindings => "ws-bindings",
    fixture_directions_reply => "directions-reply",
    fixture_info_servers_security => "info-servers-security",
    fixture_asyncapi_2 => "asyncapi-2",
    fixture_schema_formats => "schema-formats",
}

#[test]
fn raw_html_in_descriptions_is_escaped() {
    let html = render(&fixture("markdown-safety"));
    let main = main_part(&html);
    for bad in [
        "<script>alert",
        "<img src",
        "<iframe",
        "<i>y",
        "<u>html",
        "javascript:",
    ] {
        assert!(!main.contains(bad), "found {bad:?} unescaped in the page");
    }
    assert!(main.contains("&lt;script&gt;"));
    assert!(html.contains("<title>Markdown &lt;b&gt;safety&lt;/b&gt; 0.0.1</title>"));
}

#[test]
fn page_is_self_contained() {
    let html = render(&repo_root().join("asyncapi/v1-schema.yaml"));
    for external in ["<link", "<script src", "<img", "@import", "url(", "<iframe"] {
        assert!(!html.contains(external), "the page loads {external:?}");
    }
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "one inline script only"
    );
}

#[test]
fn rendering_is_deterministic() {
    let path = repo_root().join("asyncapi/v1-schema.yaml");
    assert_eq!(render(&path), render(&path));
}

#[test]
fn every_heading_has_a_permalink() {
    let html = render(&repo_root().join("asyncapi/v1-schema.yaml"));
    let main = main_part(&html);
    for level in 2..=6 {
        for heading in main.split(&format!("<h{level}")).skip(1) {
            let heading = &heading[..heading.find(&format!("</h{level}>")).unwrap()];
            let id = match heading.find("id=\"") {
                Some(at) => &heading[at + 4..][..heading[at + 4..].find('"').unwrap()],
                // Section headings take the id of their <section>.
                None => {
                    assert!(
                        heading.contains("class=\"anchor\""),
                        "no permalink: {heading}"
                    );
                    continue;
                }
            };
            assert!(
                heading.contains(&format!("href=\"#{id}\"")),
                "heading without a permalink to itself: {heading}"
            );
        }
    }
}

/// Pointers through a cross-file `$ref` (`#/channels/echo/messages/echo` where `#/channels/echo`
/// is in another file) resolve in the docs as in the code.
#[test]
fn cross_file_pointers_render() {
    let html = render(&manifest_dir().join("tests/fixtures/generate/cross-file/main.yaml"));
    insta::assert_snapshot!("cross_file_pointers_outline", outline(&html));
}

#[test]
fn v1_contract_outline() {
    let html = render(&repo_root().join("asyncapi/v1-schema.yaml"));
    insta::assert_snapshot!("v1_outline", outline(&html));
}

/// The committed page matches the contract (what `cargo xtask docs --check` checks).
#[test]
fn committed_docs_are_fresh() {
    let html = render(&repo_root().join("asyncapi/v1-schema.yaml"));
    let committed_path = repo_root().join("docs/index.html");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == html,
        "{} is missing or stale: run `cargo xtask docs` and commit it",
        committed_path.display()
    );
}

#[test]
fn corpus_documents_render() {
    let corpus = repo_root().join("../shared/asyncapi-corpus");
    if !corpus.is_dir() {
        eprintln!(
            "note: {} not found; corpus docs snapshots skipped",
            corpus.display()
        );
        return;
    }
    let mut files = Vec::new();
    for version in std::fs::read_dir(&corpus).unwrap() {
        let version = version.unwrap().path();
        if !version.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&version).unwrap() {
            let file = file.unwrap().path();
            if matches!(
                file.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml" | "json")
            ) {
                files.push(file);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no documents in {}", corpus.display());
    for file in files {
        let version = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        let stem = file.file_stem().unwrap().to_string_lossy();
        let name = format!("corpus_{version}_{stem}")
            .replace(['.', '-'], "_")
            .to_lowercase();
        let html = render(&file);
        insta::assert_snapshot!(name, outline(&html));
    }
}
