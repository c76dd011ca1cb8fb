//! Loading TOML input with errors a user can act on.
//!
//! Every problem names the file (or preset), the line and column, the dotted
//! field path, what was expected and what was found. A document may name a
//! preset as `base = "NAME"`, or another file as `base = "PATH.toml"`
//! (relative to the document's own directory); the base is loaded first
//! (itself possibly based on another) and the document's fields override
//! it, tables merging key by key and any other value replacing the base's.
//! A chain of bases that comes back to a document is refused.
//!
//! This loader is generic over the type loaded, so the workload files use it too.

use serde::de::DeserializeOwned;
use std::fmt;

/// One thing wrong with an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file path or `preset NAME` the problem is in.
    pub source: String,
    /// 1-based line and column, where known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the field, e.g. `node.card.chiplet.cores`; empty for the whole document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, ":{line}:{column}")?,
            (Some(line), None) => write!(f, ":{line}")?,
            _ => {}
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": field `{}`: {}", self.path, self.message)
        }
    }
}

/// Bad input: one or more problems, each located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// An error that is not tied to a place in a document.
    pub fn general(source: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            problems: vec![Problem {
                source: source.into(),
                line: None,
                column: None,
                path: String::new(),
                message: message.into(),
            }],
        }
    }
}

/// Parse JSON `text` (named `source`; its first line is line `first_line` of
/// the file) as `T`, with an error naming the line, column and field path.
pub fn load_json<T: DeserializeOwned>(source: &str, text: &str, first_line: usize) -> Result<T, InputError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde_json appends " at line L column C"; the location has its own fields.
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        InputError {
            problems: vec![Problem {
                source: source.into(),
                line: Some(first_line + inner.line().max(1) - 1),
                column: Some(inner.column()),
                path: if path == "." { String::new() } else { path },
                message,
            }],
        }
    })
}

/// A semantic problem found after parsing: a field path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

impl Invalid {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid { path: path.into(), message: message.into() }
    }
}

/// Looks up the text of a preset by name; `None` if there is no such preset.
pub type PresetLookup<'a> = &'a dyn Fn(&str) -> Option<&'static str>;

/// Reads a base file for [`load_with`]; libraries touch no files, so the
/// caller that may (the command line) supplies it.
pub type FileReader<'a> = &'a dyn Fn(&std::path::Path) -> Result<String, String>;

/// The documents an input was assembled from, most specific last.
#[derive(Debug, Clone)]
pub struct Sources {
    docs: Vec<(String, String)>,
}

/// Parse `text` (named `source` in messages), apply its `base` preset chain,
/// deserialize into `T`, then run `validate` and locate what it reports.
pub fn load<T: DeserializeOwned>(
    source: &str,
    text: &str,
    presets: PresetLookup<'_>,
    validate: impl Fn(&T) -> Vec<Invalid>,
) -> Result<T, InputError> {
    load_with(source, text, presets, None, validate)
}

/// [`load`], with base files read by `files` (without it, a base file is an error).
pub fn load_with<T: DeserializeOwned>(
    source: &str,
    text: &str,
    presets: PresetLookup<'_>,
    files: Option<FileReader<'_>>,
    validate: impl Fn(&T) -> Vec<Invalid>,
) -> Result<T, InputError> {
    let (table, sources) = resolve(source, text, (presets, files), &mut Vec::new())?;
    let value: T = deserialize(table, &sources)?;
    let invalid = validate(&value);
    if invalid.is_empty() {
        Ok(value)
    } else {
        Err(InputError { problems: invalid.into_iter().map(|i| sources.locate(&i.path, i.message)).collect() })
    }
}

const MAX_BASE_DEPTH: usize = 16;

/// Where a base comes from: a preset by name, or a file by path.
enum Base {
    Preset(String),
    File(std::path::PathBuf),
}

impl Base {
    /// `name` as written in `source`: a file if it ends in `.toml` or holds a
    /// path separator (relative to `source`'s directory when `source` is a file).
    fn of(name: &str, source: &str) -> Base {
        if !(name.ends_with(".toml") || name.contains('/')) {
            return Base::Preset(name.to_string());
        }
        let path = std::path::Path::new(name);
        let dir = if source.starts_with("preset ") { None } else { std::path::Path::new(source).parent() };
        let joined = dir.filter(|_| path.is_relative()).map_or_else(|| path.to_path_buf(), |d| d.join(path));
        // A file is known by its path with `.` components dropped.
        Base::File(joined.components().filter(|c| *c != std::path::Component::CurDir).collect())
    }
}

/// Parse `text`, then load its base (if any) and overlay it. `chain` holds
/// the documents being resolved, outermost first, to catch a base that
/// leads back to one of them.
fn resolve(
    source: &str,
    text: &str,
    (presets, files): (PresetLookup<'_>, Option<FileReader<'_>>),
    chain: &mut Vec<String>,
) -> Result<(toml::Table, Sources), InputError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(source, text, &e))?;
    let this = (source.to_string(), text.to_string());
    let Some(base) = table.remove("base") else {
        return Ok((table, Sources { docs: vec![this] }));
    };
    let here = Sources { docs: vec![this.clone()] };
    let refuse = |message: String| InputError { problems: vec![here.locate("base", message)] };
    let toml::Value::String(name) = base else {
        return Err(refuse("expected the name of a preset or a .toml file, as a string".into()));
    };
    let identity = |source: &str| match Base::of(source, "") {
        Base::File(path) => path.display().to_string(),
        Base::Preset(_) => source.to_string(),
    };
    chain.push(identity(source));
    if chain.len() > MAX_BASE_DEPTH {
        return Err(refuse(format!("bases are chained more than {MAX_BASE_DEPTH} deep at `{name}`")));
    }
    let (base_source, base_text) = match Base::of(&name, source) {
        Base::Preset(preset) => match presets(&preset) {
            Some(text) => (format!("preset {preset}"), text.to_string()),
            None => {
                return Err(refuse(format!(
                    "expected the name of a preset or a .toml file, found \"{name}\" (see `npusim presets`)"
                )));
            }
        },
        Base::File(path) => match files.map(|read| read(&path)) {
            Some(Ok(text)) => (path.display().to_string(), text),
            Some(Err(e)) => return Err(refuse(format!("cannot read the base file `{}`: {e}", path.display()))),
            None => return Err(refuse(format!("a base file (`{name}`) is not allowed here; name a preset"))),
        },
    };
    if let Some(at) = chain.iter().position(|c| *c == identity(&base_source)) {
        let mut cycle: Vec<&str> = chain[at..].iter().map(String::as_str).collect();
        cycle.push(&base_source);
        return Err(refuse(format!("bases form a cycle: {}", cycle.join(" -> "))));
    }
    let (mut merged, mut sources) = resolve(&base_source, &base_text, (presets, files), chain)?;
    chain.pop();
    merge(&mut merged, table);
    sources.docs.push(this);
    Ok((merged, sources))
}

/// Overlay `over` onto `base`: tables merge key by key, other values replace.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn syntax_error(source: &str, text: &str, e: &toml::de::Error) -> InputError {
    let (line, column) = e.span().map(|s| line_column(text, s.start)).unzip();
    InputError {
        problems: vec![Problem {
            source: source.to_string(),
            line,
            column,
            path: line.map(|l| field_at(text, l)).unwrap_or_default(),
            message: format!("TOML syntax error: {}", e.message().trim()),
        }],
    }
}

/// The field being written at `line`: the last table header above it and
/// the key on the line, as far as they can be read from text that does not parse.
fn field_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[..line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            let inner = l
                .strip_prefix("[[")
                .and_then(|r| r.split("]]").next())
                .or_else(|| l.strip_prefix('[').and_then(|r| r.split(']').next()))?;
            Some(inner.trim().to_string())
        })
        .unwrap_or_default();
    let key = lines.get(line.saturating_sub(1)).and_then(|l| {
        let (k, _) = l.split_once('=')?;
        let k = k.trim();
        (!k.is_empty() && !k.starts_with('[') && !k.starts_with('#')).then(|| k.trim_matches('"').to_string())
    });
    match (header.is_empty(), key) {
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{header}.{k}"),
        (_, None) => header,
    }
}

fn deserialize<T: DeserializeOwned>(table: toml::Table, sources: &Sources) -> Result<T, InputError> {
    serde_path_to_error::deserialize(table).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let raw = e.inner().message().trim().to_string();
        let (path, message) = explain(path, &raw);
        // An unknown field is wrong in its name: point at the key, not the value.
        let problem = if message.starts_with("unknown field") {
            sources.locate_key(&path, message)
        } else {
            sources.locate(&path, message)
        };
        InputError { problems: vec![problem] }
    })
}

/// Rephrase serde's messages as "expected X, found Y" and name missing fields in the path.
fn explain(path: String, raw: &str) -> (String, String) {
    let join = |field: &str| if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
    if let Some(field) = raw.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
        return (join(field), "this required field is missing".to_string());
    }
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, expected ") {
            let path = if path.ends_with(field) { path.clone() } else { join(field) };
            return (path, format!("unknown field `{field}`; expected {}", expected.trim_start_matches("one of ")));
        }
        if let Some((field, _)) = rest.split_once("`, there are no fields") {
            return (join(field), format!("unknown field `{field}`; this table takes no fields"));
        }
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `")
        && let Some((found, expected)) = rest.split_once("`, expected ")
    {
        return (path, format!("expected {}, found \"{found}\"", expected));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = raw.strip_prefix(prefix).and_then(|r| r.rsplit_once(", expected ")) {
            let expected = match expected {
                "u8" => "an integer from 0 to 255",
                "u16" => "an integer from 0 to 65535",
                "u32" | "u64" | "usize" => "a non-negative integer",
                "i32" | "i64" => "an integer",
                "f64" | "f32" => "a number",
                other => other,
            };
            let found = found.replace('`', "");
            return (path, format!("expected {expected}, found {found}"));
        }
    }
    (path, raw.to_string())
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

type LineColumn = Option<(usize, usize)>;

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some((index, tail)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Segment::Index(i));
            }
            rest = tail.trim_start_matches('[');
        }
    }
    out
}

impl Sources {
    /// Find where `path` is written: in the most specific document that has
    /// it, or failing that where its closest written parent is. Points at the
    /// value of a leaf field.
    pub fn locate(&self, path: &str, message: String) -> Problem {
        self.find(path, message, false)
    }

    /// As [`Sources::locate`], pointing at the field's key.
    pub fn locate_key(&self, path: &str, message: String) -> Problem {
        self.find(path, message, true)
    }

    fn find(&self, path: &str, message: String, key: bool) -> Problem {
        let wanted = segments(path);
        // The deepest partial match: (segments found, source, line and column).
        let mut fallback: Option<(usize, &str, LineColumn)> = None;
        for (source, text) in self.docs.iter().rev() {
            let (depth, at) = find_span(text, &wanted, key);
            if depth == wanted.len() {
                return problem(source, at, path, message);
            }
            if fallback.as_ref().is_none_or(|(d, _, _)| depth > *d) {
                fallback = Some((depth, source, at));
            }
        }
        let (_, source, at) = fallback.unwrap_or((0, "", None));
        problem(source, at, path, message)
    }
}

fn problem(source: &str, at: Option<(usize, usize)>, path: &str, message: String) -> Problem {
    let (line, column) = at.unzip();
    Problem { source: source.to_string(), line, column, path: path.to_string(), message }
}

/// How many leading segments of `path` the document contains, and the line
/// and column of the deepest one found (its key if `key`, else its value).
fn find_span(text: &str, path: &[Segment<'_>], key: bool) -> (usize, Option<(usize, usize)>) {
    let Ok(root) = toml::de::DeTable::parse(text) else {
        return (0, None);
    };
    let mut depth = 0;
    let mut at = None;
    let mut table = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for segment in path {
        let value = match (segment, table, array) {
            (Segment::Key(k), Some(t), _) => match t.iter().find(|(key, _)| key.get_ref() == k) {
                Some((key, value)) => {
                    at = Some(line_column(text, key.span().start));
                    value
                }
                None => break,
            },
            (Segment::Index(i), _, Some(a)) => match a.get(*i) {
                Some(value) => {
                    at = Some(line_column(text, value.span().start));
                    value
                }
                None => break,
            },
            _ => break,
        };
        depth += 1;
        // Point at the value rather than the key for leaves.
        if !key && !value.get_ref().is_table() && !value.get_ref().is_array() {
            at = Some(line_column(text, value.span().start));
        }
        table = value.get_ref().as_table();
        array = value.get_ref().as_array();
    }
    (depth, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        count: u32,
        #[serde(default)]
        label: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    fn presets(name: &str) -> Option<&'static str> {
        match name {
            "small" => Some("name = \"small\"\n[inner]\ncount = 2\nlabel = \"from base\"\n"),
            "loop" => Some("base = \"loop\"\nname = \"x\"\n"),
            _ => None,
        }
    }

    fn load_outer(text: &str) -> Result<Outer, InputError> {
        load("test.toml", text, &presets, |_| vec![])
    }

    fn only(e: InputError) -> Problem {
        assert_eq!(e.problems.len(), 1, "{e}");
        e.problems.into_iter().next().unwrap()
    }

    #[test]
    fn base_is_overridden_field_by_field() {
        let o = load_outer("base = \"small\"\n[inner]\ncount = 5\n").unwrap();
        assert_eq!(o, Outer { name: "small".into(), inner: Inner { count: 5, label: "from base".into() } });
    }

    #[test]
    fn negative_count_names_line_column_and_field() {
        let p = only(load_outer("name = \"a\"\n[inner]\ncount = -4\n").unwrap_err());
        assert_eq!((p.line, p.column), (Some(3), Some(9)));
        assert_eq!(p.path, "inner.count");
        assert_eq!(p.message, "expected a non-negative integer, found integer -4");
    }

    #[test]
    fn unknown_field_is_located() {
        let p = only(load_outer("name = \"a\"\n[inner]\ncount = 1\ncolour = 3\n").unwrap_err());
        assert_eq!(p.path, "inner.colour");
        assert_eq!(p.line, Some(4));
        assert!(p.message.starts_with("unknown field `colour`"), "{}", p.message);
    }

    #[test]
    fn missing_field_points_at_its_table() {
        let p = only(load_outer("name = \"a\"\n[inner]\nlabel = \"x\"\n").unwrap_err());
        assert_eq!(p.path, "inner.count");
        assert_eq!(p.line, Some(2));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let p = only(load_outer("name = \"a\"\n[inner\ncount = 1\n").unwrap_err());
        assert_eq!(p.line, Some(2));
        assert!(p.message.starts_with("TOML syntax error"), "{}", p.message);
        let p = only(load_outer("name = \"a\"\n[inner]\ncount = 16x\n").unwrap_err());
        assert_eq!((p.line, p.path.as_str()), (Some(3), "inner.count"));
    }

    #[test]
    fn unknown_and_cyclic_bases_are_refused() {
        let p = only(load_outer("base = \"nope\"\n").unwrap_err());
        assert_eq!((p.path.as_str(), p.line), ("base", Some(1)));
        let p = only(load_outer("base = \"loop\"\n").unwrap_err());
        assert!(p.message.contains("cycle"), "{}", p.message);
    }

    #[test]
    fn a_base_may_be_a_file_and_a_cycle_of_files_is_refused() {
        let files = |path: &std::path::Path| -> Result<String, String> {
            match path.to_str() {
                Some("dir/variant.toml") => Ok("base = \"small\"\n[inner]\nlabel = \"variant\"\n".into()),
                Some("dir/a.toml") => Ok("base = \"b.toml\"\nname = \"a\"\n".into()),
                Some("dir/b.toml") => Ok("base = \"./a.toml\"\nname = \"b\"\n".into()),
                _ => Err("no such file".into()),
            }
        };
        let load_file = |source: &str, text: &str| load_with::<Outer>(source, text, &presets, Some(&files), |_| vec![]);
        let o = load_file("dir/mine.toml", "base = \"variant.toml\"\n[inner]\ncount = 7\n").unwrap();
        assert_eq!(o, Outer { name: "small".into(), inner: Inner { count: 7, label: "variant".into() } });

        let p = only(load_file("dir/b.toml", "base = \"./a.toml\"\nname = \"b\"\n").unwrap_err());
        assert_eq!((p.path.as_str(), p.line), ("base", Some(1)));
        assert!(p.message.contains("cycle") && p.message.contains("b.toml"), "{}", p.message);

        let p = only(load_file("dir/b.toml", "base = \"missing.toml\"\n").unwrap_err());
        assert!(p.message.contains("cannot read the base file"), "{}", p.message);
        let p = only(load_outer("base = \"variant.toml\"\n").unwrap_err());
        assert!(p.message.contains("not allowed here"), "{}", p.message);
    }

    #[test]
    fn validation_problems_are_located_in_the_right_document() {
        let e = load("mine.toml", "base = \"small\"\nname = \"b\"\n", &presets, |o: &Outer| {
            vec![
                Invalid::new("inner.count", format!("must be odd, found {}", o.inner.count)),
                Invalid::new("name", "too short"),
            ]
        })
        .unwrap_err();
        assert_eq!(e.problems[0].source, "preset small");
        assert_eq!(e.problems[0].line, Some(3));
        assert_eq!(e.problems[1].source, "mine.toml");
        assert_eq!(e.problems[1].line, Some(2));
    }
}
