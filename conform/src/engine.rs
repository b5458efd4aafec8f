//! The conformance run: every endpoint of a contract against a running server, in one pass.
//!
//! Order: handshakes with bad parameters (all at once), then one main connection per endpoint
//! held for the whole run (its frames make the push check), the examples of every receive
//! operation with their replies, the trigger commands, and last the robustness probes on
//! connections of their own (a probe that is not JSON may rightly close its connection).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wfs_codegen::Contract;
use wfs_runtime::client::encode;

use crate::options::{Options, Refusal, Trigger};
use crate::params::{Handshake, Values, bad_cases, handshake, valid_values};
use crate::report::{Kind, Outcome, Report, short};
use crate::schema::{at_pointer, set_pointer};
use crate::surface::{Endpoint, Inbound, Surface};
use crate::wire::{self, Conn, Event, Log, Opened, Role};

/// Checks the server at `options.server` against `contract`; see the crate docs for what is
/// checked. Never panics on what the server does: everything ends up in the [`Report`].
pub async fn run(contract: &Contract, options: &Options) -> Report {
    let started = Instant::now();
    let surface = Surface::of(contract);
    let mut report = Report {
        server: options.server.clone(),
        notes: surface.skipped,
        ..Report::default()
    };
    let endpoints: Vec<Arc<Endpoint>> = surface.endpoints.into_iter().map(Arc::new).collect();
    if endpoints.is_empty() {
        // Nothing checked must not read as "conforms" in a CI job.
        report.push(
            "(document)",
            Kind::Handshake,
            "reachable channels",
            Outcome::Failed(
                "no channel has an address a WebSocket client can reach (a path, on a ws, wss, http or https server or with no server named)".to_owned(),
            ),
        );
    }
    for endpoint in &endpoints {
        for inbound in &endpoint.inbound {
            for (name, problems) in &inbound.message.bad_examples {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                report.push(
                    &endpoint.name,
                    Kind::Example,
                    format!("{} example {name}", inbound.operation),
                    Outcome::Skipped(format!(
                        "the example does not match its own schema ({}); not sent",
                        listed.join("; ")
                    )),
                );
            }
        }
    }
    let log: Log = Log::default();

    // The parameter values of a valid handshake, per endpoint.
    let mut valid: Vec<Option<Values>> = Vec::new();
    for endpoint in &endpoints {
        match valid_values(endpoint, options) {
            Ok(values) => valid.push(Some(values)),
            Err(why) => {
                report.push(
                    &endpoint.name,
                    Kind::Handshake,
                    "valid parameters",
                    Outcome::Failed(why),
                );
                valid.push(None);
            }
        }
    }

    // Bad parameters, all at once.
    let mut probes = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let Some(values) = &valid[index] else {
            continue;
        };
        for (label, bad, why) in bad_cases(endpoint, values) {
            let handshake = handshake(endpoint, &bad, options);
            let endpoint = endpoint.clone();
            let log = log.clone();
            probes.push(async move {
                let outcome = refusal(&endpoint, index, &handshake, &why, options, log).await;
                (endpoint.name.clone(), label, outcome)
            });
        }
    }
    for (channel, label, outcome) in futures_util::future::join_all(probes).await {
        report.push(&channel, Kind::ParamRefusal, label, outcome);
    }

    // One main connection per endpoint, for the rest of the run.
    let mut mains: Vec<Option<Conn>> = Vec::new();
    for (index, endpoint) in endpoints.iter().enumerate() {
        let Some(values) = &valid[index] else {
            mains.push(None);
            continue;
        };
        let handshake = handshake(endpoint, values, options);
        let (conn, outcome) =
            open_checked(endpoint, index, &handshake, Role::Main, options, &log).await;
        report.push(&endpoint.name, Kind::Handshake, "valid parameters", outcome);
        mains.push(conn);
    }

    // The examples of every receive operation, and their replies.
    let mut correlation = 0u64;
    for (index, endpoint) in endpoints.iter().enumerate() {
        for inbound in &endpoint.inbound {
            for (number, sample) in inbound.message.samples().into_iter().enumerate() {
                let name = format!("{} example {}", inbound.operation, number + 1);
                let Some(conn) = mains[index].as_mut() else {
                    report.push(
                        &endpoint.name,
                        Kind::Example,
                        name,
                        Outcome::Skipped("no connection".to_owned()),
                    );
                    continue;
                };
                correlation += 1;
                let (frame, expected) = with_correlation(inbound, sample, correlation);
                conn.drain();
                if let Err(error) = conn.send_text(frame.to_string()).await {
                    report.push(
                        &endpoint.name,
                        Kind::Example,
                        name,
                        Outcome::Failed(format!("could not send: {error}")),
                    );
                    mains[index] = None;
                    continue;
                }
                if inbound.reply.is_empty() {
                    let outcome = match settle(conn, options.settle).await {
                        Some((code, reason)) => {
                            mains[index] = None;
                            Outcome::Failed(format!(
                                "the server closed the connection ({code} `{reason}`) after a valid example {frame}"
                            ))
                        }
                        None => Outcome::Passed(format!("sent {}", short(&frame.to_string()))),
                    };
                    report.push(&endpoint.name, Kind::Example, name, outcome);
                } else {
                    let outcome =
                        await_reply(conn, endpoint, inbound, expected.as_ref(), options).await;
                    report.push(&endpoint.name, Kind::Reply, name, outcome);
                }
            }
        }
    }

    // Triggers.
    for trigger in &options.triggers {
        let outcome = run_trigger(trigger, &endpoints, &mains, &log, options).await;
        let name = match &trigger.operation {
            Some(operation) => format!("{operation}: `{}`", trigger.command),
            None => format!("`{}`", trigger.command),
        };
        let channel = trigger
            .operation
            .as_ref()
            .and_then(|operation| {
                endpoints.iter().find(|endpoint| {
                    endpoint
                        .outbound
                        .iter()
                        .any(|outbound| outbound.operation == *operation)
                })
            })
            .map_or("triggers".to_owned(), |endpoint| endpoint.name.clone());
        report.push(&channel, Kind::Trigger, name, outcome);
    }

    // Robustness, on connections of their own.
    for (index, endpoint) in endpoints.iter().enumerate() {
        let Some(values) = &valid[index] else {
            continue;
        };
        let handshake = handshake(endpoint, values, options);
        robustness(endpoint, index, &handshake, options, &log, &mut report).await;
    }

    // Close the main connections, then judge every frame they carried.
    for conn in mains.into_iter().flatten() {
        conn.close(options.settle).await;
    }
    let seen = log.lock().map(|log| log.clone()).unwrap_or_default();
    for (index, endpoint) in endpoints.iter().enumerate() {
        if valid[index].is_none() {
            continue;
        }
        let frames: Vec<_> = seen
            .iter()
            .filter(|seen| seen.endpoint == index && seen.role == Role::Main)
            .collect();
        let undeclared: Vec<_> = frames
            .iter()
            .filter(|seen| seen.matches.is_empty())
            .collect();
        for seen in &undeclared {
            report.push(
                &endpoint.name,
                Kind::Push,
                format!("frame {}", short(&seen.text)),
                Outcome::Failed(format!(
                    "undeclared frame: {}",
                    seen.why.clone().unwrap_or_default()
                )),
            );
        }
        let operations: BTreeSet<&str> = frames
            .iter()
            .flat_map(|seen| &seen.matches)
            .map(|&matched| endpoint.outbound[matched].operation.as_str())
            .collect();
        // Probe connections count for what was seen (an error answering a probe is one).
        let seen_anywhere: BTreeSet<&str> = seen
            .iter()
            .filter(|seen| seen.endpoint == index)
            .flat_map(|seen| &seen.matches)
            .map(|&matched| endpoint.outbound[matched].operation.as_str())
            .collect();
        if undeclared.is_empty() {
            report.push(
                &endpoint.name,
                Kind::Push,
                "every frame declared",
                Outcome::Passed(format!(
                    "{} frame(s), each matching a declared message ({})",
                    frames.len(),
                    operations.iter().copied().collect::<Vec<_>>().join(", ")
                )),
            );
        }
        let unseen: BTreeSet<&str> = endpoint
            .outbound
            .iter()
            .filter(|outbound| {
                outbound.pushed && !seen_anywhere.contains(outbound.operation.as_str())
            })
            .map(|outbound| outbound.operation.as_str())
            .collect();
        if !unseen.is_empty() {
            report.notes.push(format!(
                "{}: send operation(s) not seen during the run: {} (a --trigger makes one happen)",
                endpoint.name,
                unseen.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    hide_token(&mut report, options);
    report.elapsed = started.elapsed();
    report
}

/// Opens a connection that should be accepted and stay open.
async fn open_checked(
    endpoint: &Arc<Endpoint>,
    index: usize,
    handshake: &Handshake,
    role: Role,
    options: &Options,
    log: &Log,
) -> (Option<Conn>, Outcome) {
    let opened = wire::open(
        &handshake.url,
        &handshake.headers,
        options.timeout,
        (index, endpoint.clone()),
        role,
        log.clone(),
    )
    .await;
    match opened {
        Opened::Open(mut conn) => match settle(&mut conn, options.settle).await {
            Some((code, reason)) => (
                None,
                Outcome::Failed(format!(
                    "{}: accepted, then closed with {code} `{reason}`",
                    handshake.url
                )),
            ),
            None => (
                Some(conn),
                Outcome::Passed(format!("{}: upgraded and kept open", handshake.url)),
            ),
        },
        Opened::Refused { status, body } => (
            None,
            Outcome::Failed(format!(
                "{}: refused with HTTP {status} `{}`{}",
                handshake.url,
                short(&body),
                if endpoint.token.is_some() && options.token.is_none() {
                    " (the contract names a security scheme: give a token?)"
                } else {
                    ""
                }
            )),
        ),
        Opened::Failed(why) => (None, Outcome::Failed(format!("{}: {why}", handshake.url))),
    }
}

/// Listens for `wait`; the close code and reason if the connection ended meanwhile.
async fn settle(conn: &mut Conn, wait: Duration) -> Option<(u16, String)> {
    let deadline = Instant::now() + wait;
    while let Some(event) = conn.next_before(deadline).await {
        if let Event::Closed { code, reason } = event {
            return Some((code, reason));
        }
    }
    None
}

/// The verdict on a handshake with a bad parameter.
async fn refusal(
    endpoint: &Arc<Endpoint>,
    index: usize,
    handshake: &Handshake,
    why: &str,
    options: &Options,
    log: Log,
) -> Outcome {
    let opened = wire::open(
        &handshake.url,
        &handshake.headers,
        options.timeout,
        (index, endpoint.clone()),
        Role::Probe,
        log,
    )
    .await;
    match opened {
        Opened::Refused { status, body } if (400..500).contains(&status) => {
            if options.expect_param_refusal == Refusal::Close {
                Outcome::Failed(format!(
                    "refused with HTTP {status}, but a close after the upgrade is expected"
                ))
            } else {
                Outcome::Passed(format!("refused with HTTP {status} `{}`", short(&body)))
            }
        }
        Opened::Refused { status, body } => Outcome::Failed(format!(
            "answered HTTP {status} `{}`: a bad parameter should get a 4xx ({why})",
            short(&body)
        )),
        Opened::Failed(error) => Outcome::Failed(format!("no answer to the upgrade: {error}")),
        Opened::Open(mut conn) => {
            let deadline = Instant::now() + options.timeout;
            loop {
                match conn.next_before(deadline).await {
                    Some(Event::Closed { code, reason }) => {
                        return if matches!(code, 1006 | 1011) {
                            Outcome::Failed(format!(
                                "accepted, then dropped with {code} `{reason}` rather than refused"
                            ))
                        } else if options.expect_param_refusal == Refusal::Http {
                            Outcome::Failed(format!(
                                "accepted, then closed with {code} `{reason}`, but an HTTP 4xx refusal is expected"
                            ))
                        } else {
                            Outcome::Passed(format!("accepted, then closed with {code} `{reason}`"))
                        };
                    }
                    Some(Event::Frame(_)) => continue,
                    None => {
                        return Outcome::Failed(format!(
                            "accepted and kept open for {:?}, though {why}",
                            options.timeout
                        ));
                    }
                }
            }
        }
    }
}

/// The frame to send for `sample`, with a fresh correlation id where the message defines one
/// (kept only when the message still matches), and the id the reply must carry.
fn with_correlation(inbound: &Inbound, sample: Value, counter: u64) -> (Value, Option<Value>) {
    let Some(pointer) = &inbound.message.correlation else {
        return (sample, None);
    };
    let fresh = match inbound
        .message
        .schema
        .as_ref()
        .and_then(|schema| schema.at(pointer))
        .and_then(|schema| schema.get("type").cloned())
    {
        Some(Value::String(kind)) if kind == "integer" || kind == "number" => json!(1000 + counter),
        _ => json!(format!("conform-{counter}")),
    };
    let mut with = sample.clone();
    if set_pointer(&mut with, pointer, fresh.clone()) && inbound.message.accepts(&with) {
        return (with, Some(fresh));
    }
    let existing = at_pointer(&sample, pointer).cloned();
    (sample, existing)
}

/// Waits for the reply to the frame just sent.
async fn await_reply(
    conn: &mut Conn,
    endpoint: &Endpoint,
    inbound: &Inbound,
    expected: Option<&Value>,
    options: &Options,
) -> Outcome {
    let sent = Instant::now();
    let deadline = sent + options.timeout;
    let mut other_ids = Vec::new();
    loop {
        let seen = match conn.next_before(deadline).await {
            None => {
                let mut why = format!("no reply within {:?}", options.timeout);
                if !other_ids.is_empty() {
                    why.push_str(&format!(
                        "; replies came with other correlation ids ({}) than the request's {}",
                        other_ids.join(", "),
                        expected.map(Value::to_string).unwrap_or_default()
                    ));
                }
                return Outcome::Failed(why);
            }
            Some(Event::Closed { code, reason }) => {
                return Outcome::Failed(format!(
                    "the connection closed ({code} `{reason}`) before the reply"
                ));
            }
            Some(Event::Frame(seen)) => seen,
        };
        let Some(value) = &seen.value else { continue };
        let replies: Vec<usize> = seen
            .matches
            .iter()
            .copied()
            .filter(|matched| inbound.reply.contains(matched))
            .collect();
        if replies.is_empty() {
            // Not a reply; but if it is one once the correlation id is added, it is a reply
            // that lacks it.
            if let Some(expected) = expected {
                for &reply in &inbound.reply {
                    let message = &endpoint.outbound[reply].message;
                    let Some(pointer) = &message.correlation else {
                        continue;
                    };
                    let mut with = value.clone();
                    if at_pointer(value, pointer).is_none()
                        && set_pointer(&mut with, pointer, expected.clone())
                        && message.accepts(&with)
                    {
                        return Outcome::Failed(format!(
                            "reply `{}` carries no correlation id at {pointer} (the request's was {expected}): {}",
                            message.key,
                            short(&seen.text)
                        ));
                    }
                }
            }
            continue;
        }
        let elapsed = seen.at.duration_since(sent).as_millis();
        let correlated = replies.iter().find_map(|&reply| {
            let message = &endpoint.outbound[reply].message;
            message
                .correlation
                .as_ref()
                .map(|pointer| (message, pointer))
        });
        match (expected, correlated) {
            (Some(expected), Some((message, pointer))) => match at_pointer(value, pointer) {
                None => {
                    return Outcome::Failed(format!(
                        "reply `{}` carries no correlation id at {pointer} (the request's was {expected}): {}",
                        message.key,
                        short(&seen.text)
                    ));
                }
                Some(actual) if actual == expected => {
                    return Outcome::Passed(format!(
                        "reply `{}` in {elapsed} ms, correlation id {expected} at {pointer}",
                        message.key
                    ));
                }
                Some(actual) => other_ids.push(actual.to_string()),
            },
            _ => {
                let key = &endpoint.outbound[replies[0]].message.key;
                return Outcome::Passed(format!("reply `{key}` in {elapsed} ms"));
            }
        }
    }
}

/// Runs a trigger and waits for what it announces on the main connections.
async fn run_trigger(
    trigger: &Trigger,
    endpoints: &[Arc<Endpoint>],
    mains: &[Option<Conn>],
    log: &Log,
    options: &Options,
) -> Outcome {
    if let Some(operation) = &trigger.operation {
        let connected = endpoints.iter().zip(mains).any(|(endpoint, conn)| {
            conn.is_some()
                && endpoint
                    .outbound
                    .iter()
                    .any(|outbound| outbound.operation == *operation)
        });
        if !connected {
            return Outcome::Failed(format!(
                "no open connection to the channel of `{operation}` to see it on"
            ));
        }
    }
    let mark = log.lock().map(|log| log.len()).unwrap_or(0);
    let started = Instant::now();
    let command = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&trigger.command)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(options.timeout, command).await {
        Err(_) => {
            return Outcome::Failed(format!("the command ran longer than {:?}", options.timeout));
        }
        Ok(Err(error)) => return Outcome::Failed(format!("the command could not start: {error}")),
        Ok(Ok(output)) if !output.status.success() => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Outcome::Failed(format!(
                "the command failed ({}): {}",
                output.status,
                short(stderr.trim())
            ));
        }
        Ok(Ok(_)) => {}
    }
    let deadline = started + options.timeout;
    loop {
        let found = log.lock().ok().and_then(|log| {
            log.iter().skip(mark).find_map(|seen| {
                if seen.role != Role::Main {
                    return None;
                }
                let endpoint = &endpoints[seen.endpoint];
                let operations: Vec<&str> = seen
                    .matches
                    .iter()
                    .map(|&matched| &endpoint.outbound[matched])
                    .filter(|outbound| outbound.pushed)
                    .map(|outbound| outbound.operation.as_str())
                    .collect();
                match &trigger.operation {
                    Some(wanted) if operations.contains(&wanted.as_str()) => {
                        Some((wanted.clone(), seen.at))
                    }
                    None if !operations.is_empty() => Some((operations.join(", "), seen.at)),
                    _ => None,
                }
            })
        });
        if let Some((operation, at)) = found {
            return Outcome::Passed(format!(
                "`{operation}` seen {} ms after the command started",
                at.duration_since(started).as_millis()
            ));
        }
        if Instant::now() >= deadline {
            return Outcome::Failed(format!(
                "the command ran, but {} was not seen within {:?}",
                trigger
                    .operation
                    .as_ref()
                    .map_or("no pushed frame".to_owned(), |operation| format!(
                        "`{operation}`"
                    )),
                options.timeout
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Invalid frames per receive message, each on an open probe connection: no 1006/1011, no
/// undeclared answer.
async fn robustness(
    endpoint: &Arc<Endpoint>,
    index: usize,
    handshake: &Handshake,
    options: &Options,
    log: &Log,
    report: &mut Report,
) {
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut messages: Vec<&str> = Vec::new();
    for inbound in &endpoint.inbound {
        if messages.contains(&inbound.message.key.as_str()) {
            continue;
        }
        messages.push(&inbound.message.key);
        let key = &inbound.message.key;
        if let (Some(schema), Some(sample)) = (
            &inbound.message.schema,
            inbound.message.samples().into_iter().next(),
        ) {
            for (what, value) in schema.breakages(&sample) {
                let text = value.to_string();
                if cases.iter().all(|(_, seen)| *seen != text) {
                    cases.push((format!("{key}: {what}"), text));
                }
            }
        }
        cases.push((
            format!("{key}: not JSON"),
            "{\"conform\": not json".to_owned(),
        ));
    }
    if cases
        .iter()
        .filter(|(label, _)| label.ends_with("not JSON"))
        .count()
        > 1
    {
        // One not-JSON frame per address is enough: it is the same frame for every message.
        let mut kept = false;
        cases.retain(|(label, _)| {
            if label.ends_with("not JSON") {
                let keep = !kept;
                kept = true;
                keep
            } else {
                true
            }
        });
    }
    let mut conn: Option<Conn> = None;
    for (label, frame) in cases {
        if conn.is_none() {
            match open_checked(endpoint, index, handshake, Role::Probe, options, log).await {
                (Some(fresh), _) => conn = Some(fresh),
                (None, Outcome::Failed(why)) => {
                    report.push(
                        &endpoint.name,
                        Kind::Robustness,
                        label,
                        Outcome::Failed(format!("could not open a probe connection: {why}")),
                    );
                    continue;
                }
                (None, _) => continue,
            }
        }
        let Some(open) = conn.as_mut() else { continue };
        open.drain();
        if let Err(error) = open.send_text(frame.clone()).await {
            report.push(
                &endpoint.name,
                Kind::Robustness,
                label,
                Outcome::Failed(format!("could not send: {error}")),
            );
            conn = None;
            continue;
        }
        let deadline = Instant::now() + options.settle;
        let mut answers = Vec::new();
        let mut outcome = None;
        while let Some(event) = open.next_before(deadline).await {
            match event {
                Event::Frame(seen) if seen.matches.is_empty() => {
                    outcome = Some(Outcome::Failed(format!(
                        "answered by an undeclared frame {}: {}",
                        short(&seen.text),
                        seen.why.unwrap_or_default()
                    )));
                }
                Event::Frame(seen) => answers.extend(
                    seen.matches
                        .iter()
                        .map(|&matched| endpoint.outbound[matched].message.key.clone()),
                ),
                Event::Closed { code, reason } => {
                    conn = None;
                    if outcome.is_none() {
                        outcome = Some(if matches!(code, 1006 | 1011) {
                            Outcome::Failed(format!(
                                "the connection crashed ({code} `{reason}`) on {}",
                                short(&frame)
                            ))
                        } else {
                            Outcome::Passed(format!("closed with {code} `{reason}`"))
                        });
                    }
                    break;
                }
            }
        }
        let outcome = outcome.unwrap_or_else(|| {
            Outcome::Passed(if answers.is_empty() {
                "connection open, nothing sent meanwhile".to_owned()
            } else {
                answers.sort();
                answers.dedup();
                format!(
                    "connection open; frames meanwhile all declared ({})",
                    answers.join(", ")
                )
            })
        });
        report.push(&endpoint.name, Kind::Robustness, label, outcome);
    }
    if let Some(conn) = conn {
        conn.close(options.settle).await;
    }
}

/// The token hidden from every check (names carry trigger commands, outcomes carry URLs),
/// since reports end up in CI logs.
fn hide_token(report: &mut Report, options: &Options) {
    let Some(token) = options.token.as_deref().filter(|token| !token.is_empty()) else {
        return;
    };
    let encoded = encode(token);
    let hide = |text: &mut String| {
        if text.contains(token) || text.contains(&encoded) {
            *text = text.replace(token, "***").replace(&encoded, "***");
        }
    };
    for check in &mut report.checks {
        hide(&mut check.name);
        match &mut check.outcome {
            Outcome::Passed(text) | Outcome::Failed(text) | Outcome::Skipped(text) => hide(text),
        }
    }
}
