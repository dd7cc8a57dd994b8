//! Keeps the documentation true without making it repeat itself. The clap definition is the
//! source of truth, and the man page and `packaging/fakemail.default` are generated from it
//! (`tests/reference`); here, neither the man page nor `README.md` nor `docs/*.md` may name a
//! flag that does not exist (in a command, for that subcommand). The README stays a guide of at
//! most 20 KB that links to every file of `docs/`, and every relative link and `#anchor` between
//! them resolves. Also checks that `.ci/run` runs the test command the README gives, that the
//! unit waits longer than the server drains, that every file the Debian package ships exists or
//! is made by `packaging/build-deb.sh`. The error codes are listed once, in the OpenAPI
//! document (`tests/openapi.rs` checks them against the source).

use std::collections::{BTreeMap, BTreeSet};
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

/// Every `--flag` mentioned in `text`.
fn flags_in(text: &str) -> Vec<String> {
    text.match_indices("--")
        .filter_map(|(i, _)| {
            let name: String = text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
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
        out.push(Flag {
            command: path.to_string(),
            long: long.to_string(),
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

/// The Markdown documents: `README.md` and every `.md` file of `docs/`, as (path, text).
fn markdown_docs() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read docs/: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    let mut docs = vec![("README.md".to_owned(), read("README.md"))];
    docs.extend(names.into_iter().map(|n| {
        let rel = format!("docs/{n}");
        let text = read(&rel);
        (rel, text)
    }));
    assert!(docs.len() > 5, "docs/ holds no manual: {docs:?}");
    docs
}

/// A Markdown text split into its prose (fenced code blocks blanked out) and the lines of its
/// fenced code blocks.
fn split_fences(text: &str) -> (String, Vec<&str>) {
    let mut prose = String::new();
    let mut code = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if in_fence {
            code.push(line);
            continue;
        } else {
            prose.push_str(line);
        }
        prose.push('\n');
    }
    (prose, code)
}

/// The inline code spans of some prose, each on one line, and the prose without them.
fn split_spans(prose: &str) -> (Vec<String>, String) {
    let mut spans = Vec::new();
    let mut rest = String::new();
    for (i, part) in prose.split('`').enumerate() {
        if i % 2 == 1 {
            spans.push(part.replace('\n', " "));
        } else {
            rest.push_str(part);
        }
    }
    (spans, rest)
}

/// The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces made hyphens. Links keep their text; inline code its content.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` -> `text`
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..mid]);
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a document's headings; a repeated heading gets `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let (prose, _) = split_fences(text);
    let mut seen = BTreeMap::<String, usize>::new();
    let mut out = BTreeSet::new();
    for line in prose.lines() {
        let level = line.chars().take_while(|c| *c == '#').count();
        let Some(title) = line[level..]
            .strip_prefix(' ')
            .filter(|_| (1..=6).contains(&level))
        else {
            continue;
        };
        let base = slug(title.trim());
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` of a document, outside code.
fn link_targets(text: &str) -> Vec<String> {
    let (prose, _) = split_fences(text);
    let (_, prose) = split_spans(&prose);
    prose
        .match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &prose[i + 2..];
            rest.find(')').map(|end| rest[..end].trim().to_owned())
        })
        .collect()
}

/// `dir/../file` as `file`: a path relative to the repository root, with `/` separators.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                assert!(
                    parts.pop().is_some(),
                    "{} leaves the repository",
                    path.display()
                );
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    parts.join("/")
}

#[test]
fn the_readme_is_a_short_guide() {
    let readme = read("README.md");
    assert!(
        readme.len() <= 20_000,
        "README.md is {} bytes, over 20 KB: reference material belongs in docs/",
        readme.len()
    );
    // The map of the manual names every file of it.
    let targets = link_targets(&readme);
    let unmapped: Vec<String> = markdown_docs()
        .into_iter()
        .map(|(path, _)| path)
        .filter(|p| p != "README.md" && !targets.iter().any(|t| t == p))
        .collect();
    assert!(
        unmapped.is_empty(),
        "files of docs/ the README does not link to: {unmapped:?}"
    );
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = markdown_docs();
    let anchors_of: BTreeMap<&str, BTreeSet<String>> = docs
        .iter()
        .map(|(path, text)| (path.as_str(), anchors(text)))
        .collect();
    let (mut checked, mut problems) = (0, Vec::new());
    for (path, text) in &docs {
        for target in link_targets(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                path.clone()
            } else {
                normalize(&Path::new(path).parent().unwrap().join(file))
            };
            if !root.join(&resolved).exists() {
                problems.push(format!("{path}: ({target}): no such file {resolved}"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            match anchors_of.get(resolved.as_str()) {
                Some(known) if known.contains(anchor) => {}
                Some(_) => problems.push(format!("{path}: ({target}): no such heading")),
                None => problems.push(format!(
                    "{path}: ({target}): an anchor into a file that is not README.md or docs/*.md"
                )),
            }
        }
    }
    assert!(checked > 20, "only {checked} relative links found");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

/// The long flags clap declares, by command path (`fakemail`, `fakemail serve`, ...).
fn flags_by_command() -> BTreeMap<String, BTreeSet<String>> {
    let mut by_command = BTreeMap::<String, BTreeSet<String>>::new();
    for f in all_flags() {
        by_command.entry(f.command).or_default().insert(f.long);
    }
    by_command
}

/// Every `(command, flag)` of the `fakemail [SUBCOMMAND] --flag ...` invocations in a line of
/// shell, up to the end of each command (`&`, `|`, `;`, a redirection or a comment). A command
/// starts the line, or follows a prompt, a separator, `sudo` or a variable assignment.
fn invocations(line: &str, subcommands: &[String]) -> Vec<(String, String)> {
    const SEPARATORS: [&str; 5] = ["&", "&&", "|", "||", ";"];
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let program = *token == "fakemail" || token.ends_with("/fakemail");
        let starts = i == 0
            || tokens[i - 1].contains('=')
            || ["$", "sudo", "(", "$("].contains(&tokens[i - 1])
            || SEPARATORS.contains(&tokens[i - 1]);
        if !program || !starts {
            continue;
        }
        let mut rest = tokens[i + 1..].iter().peekable();
        let mut command = "fakemail".to_owned();
        if let Some(sub) = rest.peek().filter(|s| subcommands.iter().any(|n| n == **s)) {
            command = format!("fakemail {sub}");
            rest.next();
        }
        for arg in rest
            .take_while(|a| !SEPARATORS.contains(a) && !a.starts_with('>') && !a.starts_with('#'))
        {
            if let Some(flag) = arg.strip_prefix("--").filter(|f| !f.is_empty()) {
                let name = flag
                    .split('=')
                    .next()
                    .unwrap()
                    .trim_end_matches([';', ')', ',']);
                out.push((command.clone(), name.to_owned()));
            }
        }
    }
    out
}

#[test]
fn docs_mention_no_flag_that_does_not_exist() {
    let by_command = flags_by_command();
    let known: BTreeSet<&String> = by_command.values().flatten().collect();
    let subcommands = subcommands();
    let mut unknown = Vec::new();

    // The man page's own sections: SYNOPSIS, COMMANDS, OPTIONS, ENVIRONMENT, FILES and
    // EXIT STATUS. Its examples may show other programs' flags.
    let man = man();
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
    for f in flags_in(&man_docs) {
        if !known.contains(&f) {
            unknown.push(format!("man/fakemail.1: --{f}"));
        }
    }

    // The README and docs/: inline code that starts with a flag (`--retention`) names one of
    // fakemail's; a `fakemail SUBCOMMAND ...` command, inline or in a code block, names flags of
    // that subcommand. Other programs' flags (`curl -sf`, `cargo test --locked`) are theirs.
    let mut seen = 0;
    for (path, text) in markdown_docs() {
        let (prose, code) = split_fences(&text);
        let (spans, _) = split_spans(&prose);
        for span in spans.iter().filter(|s| s.starts_with("--")) {
            for f in flags_in(span) {
                seen += 1;
                if !known.contains(&f) {
                    unknown.push(format!("{path}: `--{f}`"));
                }
            }
        }
        let lines = spans.iter().map(String::as_str).chain(code);
        for (command, flag) in lines.flat_map(|l| invocations(l, &subcommands)) {
            seen += 1;
            if !by_command.get(&command).is_some_and(|f| f.contains(&flag)) {
                unknown.push(format!("{path}: `{command} --{flag}`"));
            }
        }
    }
    assert!(seen > 50, "only {seen} flags found in README.md and docs/");
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
            // cargo-deb takes globs: `docs/*.md` must match at least one file.
            None if source.contains('*') => {
                let (dir, pattern) = source.rsplit_once('/').unwrap_or((".", source));
                let (prefix, suffix) = pattern.split_once('*').unwrap();
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
                let matches = std::fs::read_dir(&dir).map_or(0, |entries| {
                    entries
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
                        .count()
                });
                if matches == 0 {
                    problems.push(format!("{source} matches no file"));
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
