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
    let page = match man::date(&committed) {
        Some(date) => man::page(&cli(), &template, date),
        None => String::new(),
    };
    let page = if page.is_empty() || (blessing() && page != committed) {
        man::page(&cli(), &template, &man::today())
    } else {
        page
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

/// Every flag and variable of every command is in that command's `--help` and in the manual
/// page: a flag hidden from either (`hide`, `hide_env`, `hide_default_value`) is documented
/// nowhere, so it must not exist.
#[test]
fn every_flag_is_in_help_and_in_the_man_page() {
    let page = man::page(&cli(), &read(man::TEMPLATE), "2000-01-01");
    let mut missing = Vec::new();
    for (name, cmd) in commands() {
        let help = help_of(&name);
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            // --help and --version are documented once, as options of `fakemail`.
            let in_man = if id == "help" || id == "version" {
                man::options_of(&page, "fakemail")
            } else {
                man::options_of(&page, &name)
            };
            let mut expect = Vec::new();
            match arg.get_long() {
                Some(long) => expect.push(format!("--{long}")),
                None => {
                    let value = arg.get_value_names().map(|v| v.join(" "));
                    expect.push(value.unwrap_or_else(|| id.to_uppercase()));
                }
            }
            if let Some(env) = arg.get_env() {
                expect.push(env.to_string_lossy().into_owned());
            }
            if arg.get_action().takes_values() {
                for default in arg.get_default_values() {
                    expect.push(format!("[default: {}]", default.to_string_lossy()));
                }
            }
            for text in expect {
                if !help.contains(&text) {
                    missing.push(format!("{name} --help lacks {text}"));
                }
                if !in_man.contains(&man::escape(&text)) {
                    missing.push(format!("man/fakemail.1 lacks {text} under {name}"));
                }
            }
        }
        if let Some(env) = cmd.get_arguments().find_map(|a| a.get_env()) {
            let env = env.to_string_lossy();
            let listed = man::section(&page, "ENVIRONMENT");
            if !listed.contains(&format!("\\fB{env}\\fR")) {
                missing.push(format!("ENVIRONMENT in man/fakemail.1 lacks {env}"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
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
