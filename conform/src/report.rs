//! What a conformance run found: one [`Check`] per channel and thing checked, rendered as a
//! human summary or as JUnit XML for CI systems.

use std::fmt::Write as _;
use std::time::Duration;

/// The kinds of check, one per part of the contract that is exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The upgrade with valid parameters succeeds and the connection stays open.
    Handshake,
    /// The upgrade with a parameter that violates its schema is refused.
    ParamRefusal,
    /// An example of a receive operation is sent.
    Example,
    /// The reply to a receive operation arrives, valid, with its correlation id.
    Reply,
    /// Every frame the server sends matches one of its declared messages.
    Push,
    /// A trigger command runs and the send operation it announces is then seen.
    Trigger,
    /// Invalid frames neither crash the connection nor draw an undeclared answer.
    Robustness,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Handshake => "handshake",
            Kind::ParamRefusal => "param-refusal",
            Kind::Example => "example",
            Kind::Reply => "reply",
            Kind::Push => "push",
            Kind::Trigger => "trigger",
            Kind::Robustness => "robustness",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Met, with what was seen.
    Passed(String),
    /// A violation, with what and why (the JSON pointer of the failing field where there is one).
    Failed(String),
    /// Not checked, with why (an example that breaks its own schema, nothing to generate ...).
    Skipped(String),
}

/// One check of one channel (or of the addresses' shared connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The channel (or the channels sharing one address, joined).
    pub channel: String,
    pub kind: Kind,
    /// What was checked: `city_uuid=not-a-uuid`, `receiveChat example hello` ...
    pub name: String,
    pub outcome: Outcome,
}

impl Check {
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The server checked (`ws://127.0.0.1:8000`).
    pub server: String,
    pub checks: Vec<Check>,
    /// What the run could not cover and why (a channel on an MQTT server ...), and what it saw
    /// (send operations observed or not).
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub(crate) fn push(
        &mut self,
        channel: &str,
        kind: Kind,
        name: impl Into<String>,
        outcome: Outcome,
    ) {
        self.checks.push(Check {
            channel: channel.to_owned(),
            kind,
            name: name.into(),
            outcome,
        });
    }

    /// The number of failed checks: 0 means the server conforms as far as the run could see.
    pub fn violations(&self) -> usize {
        self.checks.iter().filter(|check| check.failed()).count()
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| check.failed())
    }

    /// A summary for people: per channel, each check passed, failed or skipped with why.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mut channels: Vec<&str> = Vec::new();
        for check in &self.checks {
            if !channels.contains(&check.channel.as_str()) {
                channels.push(&check.channel);
            }
        }
        let _ = writeln!(out, "conform {}", self.server);
        for channel in channels {
            let checks: Vec<&Check> = self
                .checks
                .iter()
                .filter(|c| c.channel == channel)
                .collect();
            let failed = checks.iter().filter(|c| c.failed()).count();
            let _ = writeln!(
                out,
                "\n{channel}: {}",
                if failed == 0 {
                    format!("passed ({} checks)", checks.len())
                } else {
                    format!("FAILED ({failed} of {} checks)", checks.len())
                }
            );
            for check in checks {
                let (mark, text) = match &check.outcome {
                    Outcome::Passed(text) => ("ok  ", text),
                    Outcome::Failed(text) => ("FAIL", text),
                    Outcome::Skipped(text) => ("skip", text),
                };
                let _ = writeln!(
                    out,
                    "  {mark} {} {}: {text}",
                    check.kind.label(),
                    check.name
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nnotes:");
            for note in &self.notes {
                let _ = writeln!(out, "  {note}");
            }
        }
        let passed = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Passed(_)))
            .count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count();
        let _ = writeln!(
            out,
            "\n{} violation(s), {passed} passed, {skipped} skipped, in {:.1} s",
            self.violations(),
            self.elapsed.as_secs_f64()
        );
        out
    }

    /// JUnit XML: one test suite per channel, one test case per check (failures and skips as
    /// JUnit marks them), which CI systems (GitLab, Jenkins, GitHub actions' reporters) read.
    pub fn junit_xml(&self) -> String {
        let mut channels: Vec<&str> = Vec::new();
        for check in &self.checks {
            if !channels.contains(&check.channel.as_str()) {
                channels.push(&check.channel);
            }
        }
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"asyncapi-conform\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            self.checks.len(),
            self.violations(),
            self.elapsed.as_secs_f64()
        );
        for channel in channels {
            let checks: Vec<&Check> = self
                .checks
                .iter()
                .filter(|c| c.channel == channel)
                .collect();
            let failures = checks.iter().filter(|c| c.failed()).count();
            let skipped = checks
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
                .count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
                xml(channel),
                checks.len()
            );
            for check in checks {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}.{}\" name=\"{}\"",
                    xml(channel),
                    check.kind.label(),
                    xml(&check.name)
                );
                match &check.outcome {
                    Outcome::Passed(_) => out.push_str("/>\n"),
                    Outcome::Failed(why) => {
                        let _ = writeln!(
                            out,
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml(why),
                            xml(why)
                        );
                    }
                    Outcome::Skipped(why) => {
                        let _ = writeln!(
                            out,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            xml(why)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// `text` cut to 160 characters for reports.
pub(crate) fn short(text: &str) -> String {
    if text.chars().count() <= 160 {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(160).collect();
        cut.push('…');
        cut
    }
}

/// Text escaped for XML attributes and content; characters XML 1.0 forbids are dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_counts_and_escapes() {
        let mut report = Report::default();
        report.push(
            "chat",
            Kind::Push,
            "frames",
            Outcome::Failed("at /a: \"x\" < 1".into()),
        );
        report.push(
            "chat",
            Kind::Handshake,
            "valid",
            Outcome::Passed("101".into()),
        );
        report.push("echo", Kind::Example, "e", Outcome::Skipped("none".into()));
        assert_eq!(report.violations(), 1);
        let xml = report.junit_xml();
        assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
        assert!(xml.contains("&quot;x&quot; &lt; 1"), "{xml}");
        assert!(xml.contains("<skipped message=\"none\"/>"), "{xml}");
        let text = report.render_text();
        assert!(text.contains("chat: FAILED (1 of 2 checks)"), "{text}");
        assert!(text.contains("1 violation(s)"), "{text}");
    }
}
