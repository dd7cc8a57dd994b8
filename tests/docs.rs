//! Keeps the documentation in step with the command line. The clap definition is the source of
//! truth: every subcommand, long flag, environment variable and default it declares must be
//! documented in `man/fakemail.1` and `README.md`, and neither may document a flag that does
//! not exist. Also checks that `.ci/run` runs the test command the README gives, that
//! `packaging/fakemail.default` lists every setting, that the unit waits longer than the
//! server drains, that every file the Debian package ships exists or is made by
//! `packaging/build-deb.sh`.

use std::path::Path;

use clap::CommandFactory;
use fakemail::cli::Cli;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// The manual page with the roff escapes that can sit inside a flag or a variable name
/// (`\-` for a hyphen, `\%` and `\&` zero-width marks) removed.
fn man() -> String {
    read("man/fakemail.1")
        .replace("\\-", "-")
        .replace("\\%", "")
        .replace("\\&", "")
}

/// The lines of a man(7) section, from `.SH NAME` to the next `.SH`.
fn man_section<'a>(man: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!(".SH {name}");
    let mut lines = man.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "man page has no {header}");
    lines.take_while(|l| !l.starts_with(".SH ")).collect()
}

/// The `.TP` entries of a section as (tag line, body) pairs.
fn man_entries(section: &[&str]) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut lines = section.iter().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != ".TP" {
            continue;
        }
        let Some(tag) = lines.next() else { break };
        let mut body = String::new();
        while let Some(next) = lines.peek() {
            if next.trim() == ".TP" || next.starts_with(".SS ") || next.trim() == ".PP" {
                break;
            }
            body.push_str(next);
            body.push('\n');
            lines.next();
        }
        entries.push((tag.to_string(), body));
    }
    entries
}

/// Whether `text` contains `--flag` as a whole flag (not the start of a longer one).
fn has_flag(text: &str, long: &str) -> bool {
    let needle = format!("--{long}");
    text.match_indices(&needle).any(|(i, _)| {
        let after = text[i + needle.len()..].chars().next();
        !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// Every `--flag` mentioned in `text`.
fn flags_in(text: &str) -> Vec<String> {
    text.match_indices("--")
        .filter_map(|(i, _)| {
            let name: String = text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            (!name.is_empty() && !name.starts_with('-')).then_some(name)
        })
        .collect()
}

/// A long flag as clap declares it.
struct Flag {
    /// The subcommand path, e.g. `fakemail serve`.
    command: String,
    long: String,
    env: Option<String>,
    /// Only for flags that take a value.
    default: Option<String>,
}

/// The built command (with clap's generated `help` subcommand and `--help`/`--version`).
fn cli() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

fn collect(cmd: &clap::Command, path: &str, out: &mut Vec<Flag>) {
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let default = if arg.get_action().takes_values() {
            let values: Vec<_> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        } else {
            None
        };
        out.push(Flag {
            command: path.to_string(),
            long: long.to_string(),
            env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            default,
        });
    }
    for sub in cmd.get_subcommands() {
        collect(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

fn all_flags() -> Vec<Flag> {
    let cmd = cli();
    let mut flags = Vec::new();
    collect(&cmd, cmd.get_name(), &mut flags);
    assert!(
        flags.iter().any(|f| f.long == "port"),
        "clap walk found no flags"
    );
    flags
}

fn subcommands() -> Vec<String> {
    cli()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect()
}

#[test]
fn man_page_has_every_section() {
    let man = man();
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            !man_section(&man, section).is_empty(),
            "man/fakemail.1 has an empty {section}"
        );
    }
    let synopsis = man_section(&man, "SYNOPSIS").join("\n");
    let missing: Vec<_> = subcommands()
        .into_iter()
        .filter(|name| !synopsis.contains(&format!(".B fakemail {name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "subcommands missing from SYNOPSIS in man/fakemail.1: {missing:?}"
    );
}

#[test]
fn man_page_documents_every_subcommand() {
    let man = man();
    let commands = man_entries(&man_section(&man, "COMMANDS"));
    let mut missing = Vec::new();
    for name in subcommands() {
        let documented = commands.iter().any(|(tag, _)| {
            tag.split_whitespace()
                .nth(1)
                .is_some_and(|w| w.trim_matches('"') == name)
        });
        if !documented {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "subcommands missing from COMMANDS in man/fakemail.1: {missing:?}"
    );
}

#[test]
fn readme_documents_every_subcommand() {
    let readme = read("README.md");
    let missing: Vec<_> = subcommands()
        .into_iter()
        .filter(|name| !readme.contains(&format!("fakemail {name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "subcommands missing from README.md (as `fakemail <name>`): {missing:?}"
    );
}

#[test]
fn man_page_documents_every_flag_with_its_variable_and_default() {
    let man = man();
    let options = man_entries(&man_section(&man, "OPTIONS"));
    let environment = man_section(&man, "ENVIRONMENT").join("\n");
    let mut problems = Vec::new();
    for f in all_flags() {
        let Some((_, body)) = options.iter().find(|(tag, _)| has_flag(tag, &f.long)) else {
            problems.push(format!(
                "{}: --{} has no entry in OPTIONS",
                f.command, f.long
            ));
            continue;
        };
        if let Some(env) = &f.env {
            if !body.contains(env.as_str()) {
                problems.push(format!("--{}: OPTIONS entry does not name {env}", f.long));
            }
            if !environment.contains(env.as_str()) {
                problems.push(format!("{env} is missing from ENVIRONMENT"));
            }
        }
        if let Some(default) = &f.default
            && !body.contains(default.as_str())
        {
            problems.push(format!(
                "--{}: OPTIONS entry does not give the default {default}",
                f.long
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "man/fakemail.1:\n{}",
        problems.join("\n")
    );
}

#[test]
fn readme_documents_every_flag_with_its_variable_and_default() {
    let readme = read("README.md");
    let mut problems = Vec::new();
    for f in all_flags() {
        // Flags with a variable are settings and belong in the configuration table; the
        // others (--help, --version) only need a mention.
        let Some(env) = &f.env else {
            if !has_flag(&readme, &f.long) {
                problems.push(format!("--{} is not mentioned", f.long));
            }
            continue;
        };
        let row_start = format!("| `--{}", f.long);
        let Some(row) = readme
            .lines()
            .find(|l| l.starts_with(&row_start) && has_flag(l, &f.long))
        else {
            problems.push(format!(
                "--{} has no row in the configuration table",
                f.long
            ));
            continue;
        };
        if !row.contains(&format!("`{env}`")) {
            problems.push(format!("--{}: row does not name `{env}`", f.long));
        }
        if let Some(default) = &f.default
            && !row.contains(&format!("`{default}`"))
        {
            problems.push(format!(
                "--{}: row does not give the default `{default}`",
                f.long
            ));
        }
    }
    assert!(problems.is_empty(), "README.md:\n{}", problems.join("\n"));
}

#[test]
fn docs_mention_no_flag_that_does_not_exist() {
    let known: Vec<String> = all_flags().into_iter().map(|f| f.long).collect();
    let man = man();
    let readme = read("README.md");
    // Only the places that document fakemail's own flags: the man page's SYNOPSIS, COMMANDS,
    // OPTIONS, ENVIRONMENT, FILES and EXIT STATUS, and the README's configuration table.
    // Examples may show other programs' flags (curl -X, cargo --release).
    let mut man_docs = String::new();
    for section in [
        "SYNOPSIS",
        "COMMANDS",
        "OPTIONS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
    ] {
        man_docs.push_str(&man_section(&man, section).join("\n"));
    }
    let table: String = readme
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| l.split('|').nth(1).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut unknown: Vec<String> = flags_in(&man_docs)
        .into_iter()
        .map(|f| format!("man/fakemail.1: --{f}"))
        .chain(
            flags_in(&table)
                .into_iter()
                .map(|f| format!("README.md: --{f}")),
        )
        .filter(|s| !known.iter().any(|k| s.ends_with(&format!(" --{k}"))))
        .collect();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "documented flags that do not exist: {unknown:?}"
    );
}

#[test]
fn ci_runs_the_test_command_the_readme_gives() {
    let readme = read("README.md");
    let command = readme
        .lines()
        .find_map(|l| l.split_once("# run the tests").map(|(cmd, _)| cmd.trim()))
        .expect("README.md has a `<command>  # run the tests` line");
    assert!(command.starts_with("cargo test"), "{command}");
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run does not run `{command}` on a line of its own"
    );
}

#[test]
fn packaged_defaults_file_lists_every_setting_with_its_default() {
    let file = read("packaging/fakemail.default");
    let mut problems = Vec::new();
    for f in all_flags() {
        let Some(env) = &f.env else { continue };
        let prefix = format!("#{env}=");
        let Some(line) = file.lines().find(|l| l.starts_with(&prefix)) else {
            problems.push(format!("no `{prefix}...` line"));
            continue;
        };
        if let Some(default) = &f.default
            && line != format!("{prefix}{default}")
        {
            problems.push(format!("`{line}` does not give the default {default}"));
        }
    }
    assert!(
        problems.is_empty(),
        "packaging/fakemail.default:\n{}",
        problems.join("\n")
    );
}

#[test]
fn unit_stop_timeout_exceeds_the_drain_bound() {
    let unit = read("packaging/fakemail.service");
    let secs: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("the unit sets TimeoutStopSec=")
        .trim()
        .parse()
        .expect("TimeoutStopSec= in plain seconds");
    assert!(
        secs > fakemail::config::DRAIN_TIMEOUT.as_secs(),
        "TimeoutStopSec={secs} must exceed the server's drain bound of {:?}",
        fakemail::config::DRAIN_TIMEOUT
    );
}

#[test]
fn the_debian_package_ships_files_that_exist_or_are_generated() {
    let manifest = read("Cargo.toml");
    let deb = manifest
        .split("\n[package.metadata.deb]\n")
        .nth(1)
        .expect("Cargo.toml has [package.metadata.deb]");
    // Up to the next top-level table; the assets' own lines are indented.
    let deb = deb.split("\n[").next().unwrap();
    let sources: Vec<&str> = deb
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("[\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert!(
        sources.contains(&"target/release/fakemail") && sources.contains(&"man/fakemail.1"),
        "{sources:?}"
    );
    let script = read("packaging/build-deb.sh");
    let mut problems = Vec::new();
    for source in sources {
        match source.strip_prefix("target/release/") {
            Some("fakemail") => {}
            // cargo-deb reads target/release/ as the target dir: the script must make it.
            Some(generated) => {
                if !script.contains(&format!("/{generated}\"")) {
                    problems.push(format!("{source} is not written by packaging/build-deb.sh"));
                }
            }
            None => {
                if !Path::new(env!("CARGO_MANIFEST_DIR")).join(source).is_file() {
                    problems.push(format!("{source} does not exist"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "Cargo.toml:\n{}", problems.join("\n"));
    // The unit cargo-deb installs is packaging/fakemail.service, the one CI verifies.
    assert!(deb.contains("maintainer-scripts = \"packaging/\""), "{deb}");
    assert!(deb.contains("unit-name = \"fakemail\""), "{deb}");
}
