//! The language watch for Node.js (`watch/node-watch.js`), loaded as the layer loads it
//! (`--require`) into real Node.js with the built guard preloaded: what function code replaces
//! is reported as `patched` events, and the properties behave as they did.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use support::{lines, of_kind, Program, Warden};

fn watch() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("watch/node-watch.js")
}

fn patched(events: &[support::Event]) -> Vec<String> {
    of_kind(events, "patched")
        .into_iter()
        .map(|e| e.body()[0].to_string())
        .collect()
}

fn watched(warden: &Warden, script: &str) -> (Vec<String>, Vec<String>) {
    let (out, events) = Program::node(warden, script)
        .env(
            "NODE_OPTIONS",
            format!("--require \"{}\"", watch().display()),
        )
        .run();
    (lines(&out), patched(&events))
}

#[test]
fn each_replacement_is_reported_by_name_and_nothing_else_is() {
    let warden = Warden::bind();
    let script = r#"
const original = JSON.parse;
JSON.parse = function (s) { return original(s); };
JSON.stringify = JSON.stringify;                        // the same value: no replacement
const http = require('node:http');
http.get = function () { return null; };
Object.defineProperty(console, 'log', { value: console.error, writable: true, configurable: true });
const spawnSync = require('child_process').spawnSync;
console.error(JSON.parse('{"a":7}').a, typeof spawnSync);
"#;
    let (_, names) = watched(&warden, script);
    assert_eq!(names, ["JSON.parse", "http.get", "console.log"]);
}

#[test]
fn watched_properties_behave_as_plain_ones() {
    let warden = Warden::bind();
    let script = r#"
const out = [];
const original = JSON.parse;
JSON.parse = (s) => original(s) + 1;
out.push(JSON.parse('1'));                              // the replacement runs: 2
const child = Object.create(console);
child.log = () => 'child';                               // its own property, not console's
out.push(child.log(), console.log === child.log);
Object.defineProperty(JSON, 'parse', { value: original, writable: true, configurable: true });
JSON.parse = (s) => original(s) + 2;                     // watched again after a redefinition
out.push(JSON.parse('1'));
out.push(Object.keys(console).includes('log'), Object.keys(JSON).length);
process.stdout.write(out.join(' ') + '\n');
"#;
    let (lines, names) = watched(&warden, script);
    assert_eq!(lines, ["2 child false 3 true 0"]);
    assert_eq!(names, ["JSON.parse", "JSON.parse", "JSON.parse"]);
}

#[test]
fn a_function_replacing_in_a_loop_is_reported_a_bounded_number_of_times() {
    let warden = Warden::bind();
    let script = "for (let i = 0; i < 10000; i++) { JSON.parse = () => i; }";
    let (_, names) = watched(&warden, script);
    assert!((1..=20).contains(&names.len()), "{} reports", names.len());
}

#[test]
fn without_the_guard_the_watch_reports_nothing_and_breaks_nothing() {
    let warden = Warden::bind();
    let (out, events) = Program::node(
        &warden,
        "JSON.parse = () => 5; console.log(JSON.parse('1'))",
    )
    .env(
        "NODE_OPTIONS",
        format!("--require \"{}\"", watch().display()),
    )
    .without_guard()
    .run();
    assert_eq!(lines(&out), ["5"]);
    assert!(patched(&events).is_empty());
}
