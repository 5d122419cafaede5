//! A small command-line parser: `--flag value` or `--flag=value`, boolean switches, and an
//! environment twin for every flag (flag beats environment beats default). Each subcommand
//! declares its flags as a `&[Flag]` table: the one place a default is written, which the
//! parser applies, `--help` shows and a test checks against the README.

use std::collections::HashMap;
use std::fmt;

/// One flag of a subcommand.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Long name without the dashes, e.g. `api-server`.
    pub name: &'static str,
    /// Environment variable that supplies the value when the flag is absent.
    pub env: &'static str,
    /// Placeholder shown in `--help` (`URL`, `DUR`); `None` makes the flag a boolean switch.
    pub value: Option<&'static str>,
    /// What applies when neither the flag nor its environment twin is given.
    pub default: FlagDefault,
    /// One line of help.
    pub help: &'static str,
}

/// A flag's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagDefault {
    /// None: a switch, or a value that must be given.
    None,
    /// This value, applied by the parser as if it had been given.
    Value(&'static str),
    /// Worked out at start-up (from the environment, a file, another flag); says how.
    Computed(&'static str),
}

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these flag values and positional arguments.
    Run(Args),
    /// `--help` or `-h`.
    Help,
    /// `--version` or `-V`.
    Version,
}

/// Flag values (from the command line, the environment or the table's defaults) and
/// positional arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    values: HashMap<&'static str, String>,
    /// Names given on the command line or in the environment (not defaulted).
    given: Vec<&'static str>,
    /// Arguments that are not flags, in order.
    pub positional: Vec<String>,
}

impl Args {
    /// The value of a flag: given on the command line or in the environment, else its
    /// [`FlagDefault::Value`]; `None` when it has neither.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the flag was given (on the command line or in the environment).
    pub fn is_given(&self, name: &str) -> bool {
        self.given.contains(&name)
    }

    /// Whether a switch is on (`--once`, or its environment twin set to `1`/`true`/`yes`).
    pub fn is_set(&self, name: &str) -> bool {
        matches!(
            self.get(name).map(str::to_ascii_lowercase).as_deref(),
            Some("1" | "true" | "yes" | "on")
        )
    }
}

/// A command line that cannot be understood; its `Display` is the one line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses `args` (without the program name) against `flags`; `env` looks up environment twins.
pub fn parse<I, E>(flags: &[Flag], args: I, env: E) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
{
    let mut out = Args::default();
    let mut args = args.into_iter();
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        if only_positional || !arg.starts_with('-') || arg == "-" {
            out.positional.push(arg);
            continue;
        }
        match arg.as_str() {
            "--" => {
                only_positional = true;
                continue;
            }
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            _ => {}
        }
        let body = arg.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| UsageError(format!("unknown flag {arg:?} (see --help)")))?;
        let value = match (flag.value, inline) {
            (None, None) => "true".to_string(),
            (None, Some(v)) => v,
            (Some(_), Some(v)) => v,
            (Some(meta), None) => args
                .next()
                .ok_or_else(|| UsageError(format!("--{} needs a value ({meta})", flag.name)))?,
        };
        out.values.insert(flag.name, value);
        out.given.push(flag.name);
    }
    for flag in flags {
        if out.values.contains_key(flag.name) {
            continue;
        }
        if let Some(v) = Some(flag.env)
            .filter(|e| !e.is_empty())
            .and_then(&env)
            .filter(|v| !v.is_empty())
        {
            out.values.insert(flag.name, v);
            out.given.push(flag.name);
        } else if let FlagDefault::Value(v) = flag.default {
            out.values.insert(flag.name, v.to_string());
        }
    }
    Ok(Parsed::Run(out))
}

/// Renders the flag table for `--help`.
pub fn help(usage: &str, about: &str, flags: &[Flag]) -> String {
    let mut out = format!("{about}\n\nUsage: {usage}\n\nOptions:\n");
    for f in flags {
        let left = match f.value {
            Some(meta) => format!("--{} {meta}", f.name),
            None => format!("--{}", f.name),
        };
        let mut right = f.help.to_string();
        match f.default {
            FlagDefault::Value(d) | FlagDefault::Computed(d) => {
                right.push_str(&format!(" [default: {d}]"));
            }
            FlagDefault::None => {}
        }
        if !f.env.is_empty() {
            right.push_str(&format!(" [env: {}]", f.env));
        }
        out.push_str(&format!("  {left:<26} {right}\n"));
    }
    out.push_str("  -h, --help                 Print this help\n");
    out.push_str("  -V, --version              Print the version\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag {
            name: "timeout",
            env: "T_TIMEOUT",
            value: Some("DUR"),
            default: FlagDefault::Value("1s"),
            help: "wait",
        },
        Flag {
            name: "once",
            env: "T_ONCE",
            value: None,
            default: FlagDefault::None,
            help: "one round",
        },
    ];

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, UsageError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(FLAGS, args.iter().map(|s| s.to_string()), |k| {
            env.get(k).cloned()
        })
    }

    fn args(p: Parsed) -> Args {
        match p {
            Parsed::Run(a) => a,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn flag_space_and_equals_forms() {
        let a = args(run(&["--timeout", "2s", "x"], &[]).unwrap());
        assert_eq!(a.get("timeout"), Some("2s"));
        assert_eq!(a.positional, vec!["x"]);
        let a = args(run(&["--timeout=3s"], &[]).unwrap());
        assert_eq!(a.get("timeout"), Some("3s"));
    }

    #[test]
    fn flag_beats_env_and_env_fills_in() {
        let a = args(run(&["--timeout", "2s"], &[("T_TIMEOUT", "9s")]).unwrap());
        assert_eq!(a.get("timeout"), Some("2s"));
        let a = args(run(&[], &[("T_TIMEOUT", "9s"), ("T_ONCE", "1")]).unwrap());
        assert_eq!(a.get("timeout"), Some("9s"));
        assert!(a.is_set("once"));
    }

    #[test]
    fn defaults_apply_but_are_not_given() {
        let a = args(run(&[], &[]).unwrap());
        assert_eq!(a.get("timeout"), Some("1s"));
        assert!(!a.is_given("timeout"));
        let a = args(run(&[], &[("T_TIMEOUT", "3s")]).unwrap());
        assert!(a.is_given("timeout"));
        // An empty environment variable is not a value.
        let a = args(run(&[], &[("T_TIMEOUT", "")]).unwrap());
        assert_eq!(
            (a.get("timeout"), a.is_given("timeout")),
            (Some("1s"), false)
        );
    }

    #[test]
    fn switches_and_errors() {
        assert!(args(run(&["--once"], &[]).unwrap()).is_set("once"));
        assert!(!args(run(&[], &[]).unwrap()).is_set("once"));
        assert!(run(&["--nope"], &[])
            .unwrap_err()
            .0
            .contains("unknown flag"));
        assert!(run(&["--timeout"], &[])
            .unwrap_err()
            .0
            .contains("needs a value"));
        assert_eq!(run(&["--help"], &[]).unwrap(), Parsed::Help);
        assert_eq!(run(&["-V"], &[]).unwrap(), Parsed::Version);
        let a = args(run(&["--", "--once"], &[]).unwrap());
        assert_eq!(a.positional, vec!["--once"]);
    }

    #[test]
    fn help_lists_every_flag_with_env() {
        let h = help("x [OPTIONS]", "About.", FLAGS);
        assert!(h.contains("--timeout DUR"));
        assert!(h.contains("[env: T_TIMEOUT]"));
        assert!(h.contains("[default: 1s]"));
        assert!(h.contains("--once"));
    }
}
