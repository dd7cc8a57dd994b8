//! `man/fakemail.1`: the hand-written sections of `man/fakemail.1.in` around text made from the
//! clap model. `clap_mangen` renders the title, NAME and each command's options (with their
//! values, defaults, variables and possible values); SYNOPSIS, COMMANDS and ENVIRONMENT are
//! made here from the same model, since `clap_mangen` writes one page per command and this is
//! one page for all of them. Its output is then tidied so that `mandoc -T lint` stays silent.

use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

/// The hand-written part, with a placeholder line (`@OPTIONS@`) where each generated part goes.
pub const TEMPLATE: &str = "man/fakemail.1.in";

/// mandoc's style limit for an input line.
const WIDTH: usize = 80;

/// What the `roff` crate puts before every rendering: a string for the apostrophe.
const APOSTROPHE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// The page for the built command line `cmd`, dated `date` (YYYY-MM-DD).
pub fn page(cmd: &clap::Command, template: &str, date: &str) -> String {
    let mut out = format!(
        ".\\\" Generated from {TEMPLATE} and src/cli.rs; edit those, then run\n\
         .\\\" {}\n{APOSTROPHE}",
        super::BLESS_COMMAND
    );
    for line in template.lines() {
        if line.starts_with(".\\\"") {
            continue;
        }
        let generated = match line {
            "@TH@" => title(cmd, date),
            "@NAME@" => name(cmd),
            "@SYNOPSIS@" => synopsis(cmd),
            "@COMMANDS@" => commands(cmd),
            "@OPTIONS@" => options(cmd),
            "@ENVIRONMENT@" => environment(cmd),
            other if other.starts_with('@') => panic!("{TEMPLATE}: unknown placeholder {other}"),
            _ => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        out.push_str(&tidy(&generated));
    }
    out
}

/// The date in the `.TH` line of a page made by [`page`].
pub fn date(page: &str) -> Option<&str> {
    let th = page.lines().find(|l| l.starts_with(".TH "))?;
    th.split(' ').nth(3).filter(|d| d.len() == 10)
}

/// Today's date, UTC.
pub fn today() -> String {
    fakemail::time::Timestamp::now().to_rfc3339()[..10].to_owned()
}

/// `text` as the `roff` crate writes it in a text line.
pub fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

/// The lines of section `name` of `page`, up to the next `.SH`.
pub fn section(page: &str, name: &str) -> String {
    part(page, &format!(".SH {name}"), &[".SH "])
}

/// The options of `command` (e.g. `fakemail serve`) in `page`: its `.SS` in OPTIONS.
pub fn options_of(page: &str, command: &str) -> String {
    part(page, &format!(".SS \"{command}\""), &[".SS ", ".SH "])
}

/// The `.TP` item of `options` (see [`options_of`]) that documents `name` (`--bind`,
/// `<SHELL>`): its tag line and text, up to the next item.
pub fn entry(options: &str, name: &str) -> Option<String> {
    let tag = match name.strip_prefix('<').and_then(|n| n.strip_suffix('>')) {
        Some(value) => format!("<\\fI{value}\\fR>"),
        None => format!("\\fB{}\\fR", escape(name)),
    };
    let mut lines = options.lines().skip_while(|l| *l != ".TP").peekable();
    while lines.next().is_some() {
        let item: Vec<_> = std::iter::from_fn(|| lines.next_if(|l| *l != ".TP")).collect();
        // `-h, --help` names the long flag second.
        let first = item.first().copied().unwrap_or_default();
        if first.starts_with(&tag) || first.contains(&format!(", {tag}")) {
            return Some(item.join("\n"));
        }
    }
    None
}

fn part(page: &str, header: &str, ends: &[&str]) -> String {
    let mut lines = page.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "man/fakemail.1 has no {header}");
    lines
        .take_while(|l| !ends.iter().any(|e| l.starts_with(e)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one of clap_mangen's `render_*` methods writes, without the apostrophe preamble and the
/// section's own `.SH` line (the template has it).
fn mangen(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    render(&mut buf).expect("render to memory");
    let text = String::from_utf8(buf).expect("UTF-8 roff");
    let text = text
        .strip_prefix(APOSTROPHE)
        .expect("clap_mangen starts with the apostrophe preamble");
    match text.split_once('\n') {
        Some((first, rest)) if first.starts_with(".SH ") => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// `roff` as text lines, apostrophes written as the preamble's string.
fn render(roff: &Roff) -> String {
    roff.render()
        .strip_prefix(APOSTROPHE)
        .expect("roff starts with the apostrophe preamble")
        .to_owned()
}

fn title(cmd: &clap::Command, date: &str) -> String {
    let man = Man::new(cmd.clone())
        .title(cmd.get_name().to_uppercase())
        .date(date)
        .manual("User Commands");
    mangen(|w| man.render_title(w))
}

fn name(cmd: &clap::Command) -> String {
    mangen(|w| Man::new(cmd.clone()).render_name_section(w))
}

/// The visible subcommands, in the order `--help` lists them.
fn subcommands(cmd: &clap::Command) -> Vec<&clap::Command> {
    let mut subs: Vec<_> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    subs.sort_by_key(|s| s.get_display_order());
    subs
}

fn is_help_or_version(arg: &clap::Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// One line per command: its required options, `[options]` for the others, and its
/// positional arguments with their possible values; then `fakemail` with its own flags.
fn synopsis(cmd: &clap::Command) -> String {
    let mut roff = Roff::new();
    for sub in subcommands(cmd) {
        let mut line = vec![bold(format!("{} {}", cmd.get_name(), sub.get_name()))];
        let visible = || {
            sub.get_arguments()
                .filter(|a| !a.is_hide_set() && !is_help_or_version(a))
        };
        for arg in visible().filter(|a| a.is_required_set() && !a.is_positional()) {
            line.push(roman(" "));
            line.push(bold(format!("--{}", arg.get_long().expect("a long flag"))));
            if let Some(value) = value_name(arg) {
                line.extend([roman(" "), italic(value.to_lowercase())]);
            }
        }
        if visible().any(|a| !a.is_required_set() && !a.is_positional()) {
            line.extend([roman(" ["), italic("options"), roman("]")]);
        }
        // clap's `help`, which takes a command name.
        if sub.has_subcommands() {
            line.extend([roman(" ["), italic("command"), roman("]")]);
        }
        for arg in visible().filter(|a| a.is_positional()) {
            line.push(roman(if arg.is_required_set() { " " } else { " [" }));
            let values: Vec<_> = arg
                .get_possible_values()
                .into_iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if values.is_empty() {
                line.push(italic(value_name(arg).unwrap_or("ARG").to_lowercase()));
            } else {
                line.push(bold(values.join("|")));
            }
            if !arg.is_required_set() {
                line.push(roman("]"));
            }
            if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
                line.push(roman("..."));
            }
        }
        roff.text(line);
        roff.control("br", []);
    }
    let mut line = vec![bold(cmd.get_name()), roman(" ")];
    for (i, arg) in cmd.get_arguments().filter(|a| !a.is_hide_set()).enumerate() {
        if i > 0 {
            line.push(roman(" | "));
        }
        line.push(bold(format!("--{}", arg.get_long().expect("a long flag"))));
    }
    roff.text(line);
    render(&roff)
}

fn value_name(arg: &clap::Arg) -> Option<&str> {
    arg.get_value_names()?.first().map(|v| v.as_str())
}

/// The paragraphs of a clap help text as text lines, `.sp` between them.
fn paragraphs(roff: &mut Roff, text: &str) {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            roff.control("sp", []);
        }
        roff.text([roman(paragraph)]);
    }
}

/// Each command with its long description.
fn commands(cmd: &clap::Command) -> String {
    let mut roff = Roff::new();
    for sub in subcommands(cmd) {
        roff.control("TP", []);
        roff.text([bold(format!("{} {}", cmd.get_name(), sub.get_name()))]);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            paragraphs(&mut roff, &about.to_string());
        }
    }
    render(&roff)
}

/// The options of each command under a `.SS` of its own, then those of `fakemail` itself
/// (`--help`, `--version`, which every command takes too).
fn options(cmd: &clap::Command) -> String {
    let mut out = String::new();
    let subs = subcommands(cmd).into_iter().map(|sub| {
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        let mut sub = sub.clone();
        for id in ["help", "version"] {
            if sub.get_arguments().any(|a| a.get_id() == id) {
                sub = sub.mut_arg(id, |a| a.hide(true));
            }
        }
        (name, sub)
    });
    // Which commands take --help and --version too.
    let without: Vec<_> = subcommands(cmd)
        .into_iter()
        .filter(|s| !s.get_arguments().any(|a| a.get_id() == "help"))
        .map(|s| bold(format!("{} {}", cmd.get_name(), s.get_name())))
        .collect();
    let mut root = Roff::new();
    let mut line = vec![roman("Every command takes these options too")];
    if !without.is_empty() {
        line.push(roman(", except "));
        line.extend(list(without.into_iter()));
    }
    line.push(roman("."));
    root.text(line);
    for (name, sub) in subs.chain([(cmd.get_name().to_owned(), cmd.clone())]) {
        if sub.get_arguments().all(|a| a.is_hide_set()) {
            continue;
        }
        out.push_str(&format!(".SS \"{name}\"\n"));
        if name == cmd.get_name() {
            out.push_str(&render(&root));
        }
        let text = mangen(|w| Man::new(sub).render_options_section(w));
        for line in text.lines() {
            // Options under a help heading of their own come as a section: make it part of
            // this command's.
            match line.strip_prefix(".SH ") {
                Some(heading) => out.push_str(&format!(".SS \"{name}: {heading}\"\n")),
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// The options a variable sets: each flag with the commands that have it.
type Sets = Vec<(String, Vec<String>)>;

/// Each variable with the options it sets.
fn environment(cmd: &clap::Command) -> String {
    // In the order of the commands and their options.
    let mut vars: Vec<(String, Sets)> = Vec::new();
    for sub in subcommands(cmd) {
        for arg in sub.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            if arg.is_hide_set() || arg.is_hide_env_set() {
                continue;
            }
            let env = env.to_string_lossy().into_owned();
            let command = format!("{} {}", cmd.get_name(), sub.get_name());
            let sets = match vars.iter_mut().find(|(v, _)| *v == env) {
                Some((_, sets)) => sets,
                None => {
                    vars.push((env, Vec::new()));
                    &mut vars.last_mut().unwrap().1
                }
            };
            match sets.iter_mut().find(|(flag, _)| flag == long) {
                Some((_, commands)) => commands.push(command),
                None => sets.push((long.to_owned(), vec![command])),
            }
        }
    }
    let mut roff = Roff::new();
    for (env, sets) in vars {
        roff.control("TP", []);
        roff.text([bold(env)]);
        let mut line = vec![roman("Sets ")];
        for (i, (flag, commands)) in sets.iter().enumerate() {
            if i > 0 {
                line.push(roman(", and "));
            }
            line.extend([bold(format!("--{flag}")), roman(" of ")]);
            line.extend(list(commands.iter().map(|c| bold(c.as_str()))));
        }
        line.push(roman("."));
        roff.text(line);
    }
    render(&roff)
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: impl ExactSizeIterator<Item = Inline>) -> Vec<Inline> {
    let n = items.len();
    let mut out = Vec::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(roman(if i + 1 == n { " and " } else { ", " }));
        }
        out.push(item);
    }
    out
}

/// Makes generated roff pass `mandoc -T lint`, which reports even style: no trailing
/// whitespace, no blank lines (a paragraph break in a clap help text) and no text line over
/// [`WIDTH`]. Also sets clap's `code` spans in bold.
fn tidy(roff: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in roff.lines().map(str::trim_end) {
        if line.is_empty() {
            lines.push(".sp".to_owned());
        } else if line.starts_with('.') || line.starts_with('\'') {
            lines.push(line.to_owned());
        } else {
            wrap(&flags_in_bold(&code_in_bold(line)), &mut lines);
        }
    }
    // clap_mangen breaks the line twice around a blank one before "Possible values": the
    // `.sp` the blank line became says it all.
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let last = out.last().map(String::as_str);
        match (last, line.as_str()) {
            (Some(".br" | ".sp"), ".br" | ".sp") => {
                let keep = if last == Some(".sp") || line == ".sp" {
                    ".sp"
                } else {
                    ".br"
                };
                *out.last_mut().unwrap() = keep.to_owned();
            }
            _ => out.push(line),
        }
    }
    out.iter().map(|l| format!("{l}\n")).collect()
}

/// `` `7d` `` as `\fB7d\fR`, when the backquotes on the line pair up.
fn code_in_bold(line: &str) -> String {
    let parts: Vec<&str> = line.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return line.to_owned();
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                format!("\\fB{p}\\fR")
            } else {
                (*p).to_owned()
            }
        })
        .collect()
}

/// Each `--flag` in roman text (`\-\-flag` in roff) set in bold, as the hand-written text has
/// them.
fn flags_in_bold(line: &str) -> String {
    const DASHES: &str = "\\-\\-";
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(DASHES) {
        out.push_str(&rest[..i]);
        let from = &rest[i..];
        // The flag: the dashes, then letters, digits and escaped hyphens.
        let mut len = DASHES.len();
        loop {
            let tail = &from[len..];
            if tail.starts_with("\\-") {
                len += 2;
            } else if tail.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                len += 1;
            } else {
                break;
            }
        }
        let mut flag = &from[..len];
        while flag.len() > DASHES.len() && flag.ends_with("\\-") {
            flag = &flag[..flag.len() - 2];
        }
        if flag == DASHES || out.ends_with("\\fB") {
            out.push_str(flag);
        } else {
            out.push_str(&format!("\\fB{flag}\\fR"));
        }
        rest = &from[flag.len()..];
    }
    out.push_str(rest);
    out
}

/// Splits a text line at spaces into lines of at most [`WIDTH`] bytes (a longer word stays
/// whole); a line that would start with a control character gets a zero-width `\&` first.
fn wrap(line: &str, out: &mut Vec<String>) {
    let mut current = String::new();
    for word in line.split(' ') {
        if !current.is_empty() && current.len() + 1 + word.len() > WIDTH {
            out.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            if word.starts_with('.') || word.starts_with('\'') {
                current.push_str("\\&");
            }
        } else {
            current.push(' ');
        }
        current.push_str(word);
    }
    out.push(current);
}
