//! The reference pages made from the command line, so that a flag is documented once, in its
//! doc comment in `src/cli.rs`: the manual page `man/fakemail.1` (see [`man`]) and the settings
//! file of the Debian package, `packaging/fakemail.default` (see [`env_file`]). Each test fails
//! when a committed file differs from what it would generate now;
//!
//! ```text
//! FAKEMAIL_BLESS=1 cargo test --test reference
//! ```
//!
//! rewrites them (the convention of expect-test and insta). The generator lives here rather than
//! in the library so that `clap_mangen` stays out of the shipped binary.

mod env_file;
mod man;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::CommandFactory;
use fakemail::cli::Cli;

/// The command that regenerates every file these tests check.
const BLESS_COMMAND: &str = "FAKEMAIL_BLESS=1 cargo test --test reference";

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// The command line as the binary sees it: built, so with clap's `help` subcommand and the
/// `--help` and `--version` flags of every command.
fn cli() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// The subcommand `name` of the built command line.
fn subcommand(name: &str) -> clap::Command {
    cli()
        .find_subcommand(name)
        .unwrap_or_else(|| panic!("no `fakemail {name}`"))
        .clone()
}

/// Whether `FAKEMAIL_BLESS` asks to rewrite the files rather than check them.
fn blessing() -> bool {
    std::env::var_os("FAKEMAIL_BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Checks that the committed file `rel` is `generated`, or writes it when blessing.
#[track_caller]
fn check_or_bless(rel: &str, generated: &str) {
    let committed = std::fs::read_to_string(path(rel)).unwrap_or_default();
    if committed == generated {
        return;
    }
    if blessing() {
        std::fs::write(path(rel), generated).unwrap_or_else(|e| panic!("cannot write {rel}: {e}"));
        eprintln!("wrote {rel}");
        return;
    }
    let (line, (old, new)) = committed
        .lines()
        .chain(std::iter::repeat(""))
        .zip(generated.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .expect("the files differ");
    panic!(
        "{rel} is not what src/cli.rs and its template make; regenerate it with\n\n    \
         {BLESS_COMMAND}\n\nand commit the result. First difference, line {}:\n  \
         committed: {old}\n  generated: {new}",
        line + 1
    );
}

#[test]
fn the_man_page_is_generated_from_the_command_line() {
    let committed = std::fs::read_to_string(path("man/fakemail.1")).unwrap_or_default();
    let template = read(man::TEMPLATE);
    // The date in the title is that of the last change: the committed one while nothing else
    // changes, today's when blessing a change.
    let kept = man::date(&committed).map(|date| man::page(&cli(), &template, date));
    let page = match kept {
        Some(page) if page == committed || !blessing() => page,
        _ => man::page(&cli(), &template, &man::today()),
    };
    check_or_bless("man/fakemail.1", &page);
}

#[test]
fn the_packaged_settings_file_is_generated_from_the_command_line() {
    let file = env_file::generate(
        &subcommand("serve"),
        &read(env_file::TEMPLATE),
        &read(env_file::UNIT),
    );
    check_or_bless("packaging/fakemail.default", &file);
}

/// Every command of the built command line with its arguments, as (`fakemail serve`, command).
fn commands() -> Vec<(String, clap::Command)> {
    let root = cli();
    let mut out = vec![("fakemail".to_owned(), root.clone())];
    for sub in root.get_subcommands() {
        out.push((format!("fakemail {}", sub.get_name()), sub.clone()));
    }
    out
}

/// The `--help` text of the real binary for `command` (`fakemail help help` for clap's `help`,
/// which takes no `--help`).
fn help_of(command: &str) -> String {
    let mut args: Vec<&str> = command.split(' ').skip(1).collect();
    if args == ["help"] {
        args.push("help");
    } else {
        args.push("--help");
    }
    let out = Process::new(env!("CARGO_BIN_EXE_fakemail"))
        .args(&args)
        .output()
        .expect("run fakemail");
    assert!(out.status.success(), "{command} --help: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every flag and positional argument of every command is in that command's `--help` and in
/// the manual page, each with its variable and default: one hidden from either (`hide`,
/// `hide_env`, `hide_default_value`) is documented nowhere, so it must not exist.
#[test]
fn every_flag_is_in_help_and_in_the_man_page() {
    let page = man::page(&cli(), &read(man::TEMPLATE), "2000-01-01");
    let environment = man::section(&page, "ENVIRONMENT");
    let mut missing = Vec::new();
    for (command, cmd) in commands() {
        let help = help_of(&command);
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            let name = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("<{}>", arg.get_value_names().expect("a value name")[0]),
            };
            // --help and --version are documented once, as options of `fakemail`.
            let man_command = if id == "help" || id == "version" {
                "fakemail"
            } else {
                &command
            };
            let in_help = help_entry(&help, &name);
            let in_man = man::entry(&man::options_of(&page, man_command), &name);
            let (Some(in_help), Some(in_man)) = (&in_help, &in_man) else {
                if in_help.is_none() {
                    missing.push(format!("`{command} --help` has no {name}"));
                }
                if in_man.is_none() {
                    missing.push(format!("man/fakemail.1 has no {name} under {man_command}"));
                }
                continue;
            };
            if let Some(var) = arg.get_env().map(|v| v.to_string_lossy()) {
                if !in_help.contains(&format!("[env: {var}="))
                    && !in_help.contains(&format!("[env: {var}]"))
                {
                    missing.push(format!("`{command} --help` does not give {var} for {name}"));
                }
                if !in_man.contains(&format!("\\fB{var}\\fR")) {
                    missing.push(format!(
                        "man/fakemail.1 does not give {var} for {command} {name}"
                    ));
                }
                if !environment.lines().any(|l| l == format!("\\fB{var}\\fR")) {
                    missing.push(format!("ENVIRONMENT in man/fakemail.1 has no {var}"));
                }
            }
            if arg.get_action().takes_values() {
                for default in arg.get_default_values() {
                    let default = format!("[default: {}]", default.to_string_lossy());
                    if !in_help.contains(&default) {
                        missing.push(format!(
                            "`{command} --help` does not give {default} for {name}"
                        ));
                    }
                    if !in_man.contains(&man::escape(&default)) {
                        missing.push(format!(
                            "man/fakemail.1 does not give {default} for {command} {name}"
                        ));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// The item of `--help` output that documents `name` (`--bind`, `<SHELL>`): from its line up to
/// the next item or heading. Items are indented 2 or 6 columns, their text more, the rest less.
fn help_entry(help: &str, name: &str) -> Option<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut lines = help.lines();
    let first = lines.find(|l| {
        let text = l.trim_start();
        // `-h, --help` names the long flag second.
        let after = text.strip_prefix(name).or_else(|| {
            let (short, long) = text.split_once(", ")?;
            (short.len() == 2)
                .then(|| long.strip_prefix(name))
                .flatten()
        });
        (2..=6).contains(&indent(l)) && after.is_some_and(|a| a.is_empty() || a.starts_with(' '))
    })?;
    let rest = lines.take_while(|l| l.trim().is_empty() || indent(l) > 6);
    Some(
        [first]
            .into_iter()
            .chain(rest)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Every `--flag` and `FAKEMAIL_*` variable the hand-written text names exists: the templates
/// are the one place left where a renamed flag could linger. The manual's EXAMPLES and SEE
/// ALSO are left out of the flag check, as they show other programs' flags.
#[test]
fn the_hand_written_text_names_only_flags_and_variables_that_exist() {
    let mut flags = Vec::new();
    let mut vars = Vec::new();
    for (_, cmd) in commands() {
        for arg in cmd.get_arguments() {
            flags.extend(arg.get_long().map(str::to_owned));
            vars.extend(arg.get_env().map(|e| e.to_string_lossy().into_owned()));
        }
    }
    // Comment lines say how to regenerate (`cargo test --test reference`).
    let man = uncommented(&read(man::TEMPLATE), ".\\\"").replace("\\-", "-");
    let prose = man.split("\n.SH EXAMPLES\n").next().unwrap();
    let settings = uncommented(&read(env_file::TEMPLATE), "##");
    let mut unknown = Vec::new();
    for (file, text) in [(man::TEMPLATE, prose), (env_file::TEMPLATE, &settings)] {
        for flag in words_after(text, "--") {
            if !flags.contains(&flag) {
                unknown.push(format!("{file}: --{flag}"));
            }
        }
    }
    for (file, text) in [(man::TEMPLATE, &man), (env_file::TEMPLATE, &settings)] {
        for var in words_after(text, "FAKEMAIL_") {
            let var = format!("FAKEMAIL_{var}");
            if !vars.contains(&var) {
                unknown.push(format!("{file}: {var}"));
            }
        }
    }
    assert!(
        flags.contains(&"port".to_owned()) && vars.contains(&"FAKEMAIL_PORT".to_owned()),
        "{flags:?} {vars:?}"
    );
    unknown.sort();
    unknown.dedup();
    assert!(unknown.is_empty(), "no such flag or variable: {unknown:?}");
}

/// `text` without the lines that start with `comment`.
fn uncommented(text: &str, comment: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(comment))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `text`: `--` then lower case and `-`, or `FAKEMAIL_`
/// then upper case and `_`.
fn words_after(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .filter(|(i, _)| {
            // Not the tail of a longer word (`---`, `XFAKEMAIL_`).
            !text[..*i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .filter_map(|(i, _)| {
            let name: String = text[i + prefix.len()..]
                .chars()
                .take_while(|c| match prefix {
                    "--" => c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-',
                    _ => c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_',
                })
                .collect();
            let name = name.trim_end_matches(['-', '_']).to_owned();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}
