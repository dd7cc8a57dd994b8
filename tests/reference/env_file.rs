//! `packaging/fakemail.default`, the `EnvironmentFile=` of the systemd unit: the header of
//! `packaging/fakemail.default.in`, then every setting of `fakemail serve` commented out, with
//! its help, its possible values, what the unit says about it and its default, so that
//! uncommenting a line changes nothing until its value does.

use std::collections::BTreeMap;

/// The hand-written part: the header, `@SETTINGS@`, then notes about this unit by variable.
pub const TEMPLATE: &str = "packaging/fakemail.default.in";
/// The unit that reads the file; its `Environment=` values are the ones the service starts with.
pub const UNIT: &str = "packaging/fakemail.service";

/// Width of the comment lines, `# ` included.
const WIDTH: usize = 96;

/// The file for `serve`, the built `fakemail serve` command.
pub fn generate(serve: &clap::Command, template: &str, unit: &str) -> String {
    let (header, notes) = template
        .split_once("\n@SETTINGS@\n")
        .unwrap_or_else(|| panic!("{TEMPLATE} has no @SETTINGS@ line"));
    let mut notes = notes_by_variable(notes);
    let set_by_unit = unit_environment(unit);
    // In this file a setting is a variable: `--retention` reads FAKEMAIL_RETENTION.
    let vars: BTreeMap<String, String> = serve
        .get_arguments()
        .filter_map(|a| Some((a.get_long()?.to_owned(), env(a)?)))
        .collect();

    let mut out: String = header
        .lines()
        .filter(|l| !l.starts_with("##"))
        .map(|l| format!("{l}\n"))
        .collect();
    for arg in serve.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(var) = env(arg) else { continue };
        out.push('\n');
        let help = arg.get_long_help().or_else(|| arg.get_help());
        let help = help.map(|h| h.to_string()).unwrap_or_default();
        for (i, paragraph) in help.split("\n\n").enumerate() {
            if i > 0 {
                out.push_str("#\n");
            }
            let mut paragraph = flags_as_variables(paragraph, &vars);
            // clap drops the period of a one-paragraph help.
            if !paragraph.ends_with('.') {
                paragraph.push('.');
            }
            comment(&paragraph, "# ", "# ", &mut out);
        }
        let values: Vec<_> = arg
            .get_possible_values()
            .into_iter()
            .filter(|v| !v.is_hide_set())
            .collect();
        for value in values {
            let line = match value.get_help() {
                Some(help) => format!("{}: {help}", value.get_name()),
                None => value.get_name().to_owned(),
            };
            comment(&line, "#   ", "#     ", &mut out);
        }
        let unit_value = set_by_unit.get(&var);
        let note = notes.remove(&var).unwrap_or_default();
        if unit_value.is_some() || !note.is_empty() {
            out.push_str("#\n");
        }
        if let Some(value) = unit_value {
            out.push_str(&format!("# The unit sets {value}.\n"));
        }
        out.push_str(&note);
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let value = unit_value.cloned().unwrap_or(default);
        out.push_str(&format!("#{var}={value}\n"));
    }
    let stray: Vec<_> = notes.keys().collect();
    assert!(
        stray.is_empty(),
        "{TEMPLATE} has notes for variables of no `fakemail serve` option: {stray:?}"
    );
    out
}

fn env(arg: &clap::Arg) -> Option<String> {
    Some(arg.get_env()?.to_string_lossy().into_owned())
}

/// The `@FAKEMAIL_X` blocks after `@SETTINGS@`: the comment lines under each.
fn notes_by_variable(text: &str) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::<String, String>::new();
    let mut current = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(var) = line.strip_prefix('@') {
            current = Some(var.trim().to_owned());
            continue;
        }
        let var = current
            .clone()
            .unwrap_or_else(|| panic!("{TEMPLATE}: `{line}` is under no @VARIABLE"));
        assert!(
            line.starts_with('#'),
            "{TEMPLATE}: a note line is a comment: `{line}`"
        );
        let note = notes.entry(var).or_default();
        note.push_str(line);
        note.push('\n');
    }
    notes
}

/// The variables the unit's `Environment=` lines set.
fn unit_environment(unit: &str) -> BTreeMap<String, String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .flat_map(str::split_whitespace)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `text` with each `--flag` that has a variable written as that variable.
fn flags_as_variables(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let name = after[..len].trim_end_matches('-');
        match vars.get(name) {
            Some(var) => {
                out.push_str(var);
                rest = &after[name.len()..];
            }
            None => {
                out.push_str("--");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as comment lines of at most [`WIDTH`] bytes (a longer word stays whole), the first
/// starting with `first`, the others with `rest`.
fn comment(text: &str, first: &str, rest: &str, out: &mut String) {
    let mut prefix = first;
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > WIDTH {
            out.push_str(&format!("{prefix}{line}\n"));
            line.clear();
            prefix = rest;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&format!("{prefix}{line}\n"));
}
