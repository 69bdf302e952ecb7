//! The source files of a crate must not import each other in a circle.
//!
//! For every `.rs` file under `crates/<name>/src`, each `crate::a::b::...` path in the code
//! (comments and string literals ignored; `use crate::{a, b::c}` groups expanded) is an edge
//! to the file that defines the longest matching module (`a/b.rs`, `a/b/mod.rs`, `a.rs`, ...);
//! `crate::Name` for a name re-exported by `lib.rs` with `pub use module::...` goes to that
//! module's file. Relative paths count too: `super::x` and `self::x` (climbing from the
//! right module, also inside inline `mod tests { ... }`), and `child::x` for a module the file
//! declares with `mod child;`, so a parent and its child file that use each other are a cycle.
//! `lib.rs`/`main.rs` themselves are left out: they declare every module.
//!
//! [`ACYCLIC_CRATES`] must stay free of cycles (the test fails and prints the cycle);
//! [`report_every_crate`] prints the graph state of all crates without failing:
//!
//! ```text
//! cargo test -p qmp --test no_import_cycles -- --nocapture
//! ```
//!
//! When a crate's cycles are gone, add it to [`ACYCLIC_CRATES`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Crates (directories under `crates/`) whose module files must form an acyclic graph.
/// Every crate of the workspace (a new crate is added here when it is created).
const ACYCLIC_CRATES: &[&str] = &[
    "fw-cfg",
    "nvdimm-acpi",
    "nvlabel",
    "pmctl",
    "pmem-layout",
    "pmem-probe",
    "pmvm",
    "qmp",
    "rfb",
    "vm-config",
    "vmm",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, as paths relative to `dir` with `/` separators.
fn rust_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = e.path();
        if path.is_dir() {
            rust_files(&path, &rel_name, out);
        } else if name.ends_with(".rs") {
            out.push(rel_name);
        }
    }
}

/// `src` without comments, string and character literals (replaced by spaces).
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            // Raw string r"..." / r#"..."#: find the matching number of hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(' ');
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push(' ');
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<Tok> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(b[start..i].iter().collect()));
            continue;
        }
        if c == ':' && b.get(i + 1) == Some(&':') {
            out.push(Tok::PathSep);
            i += 2;
            continue;
        }
        if !c.is_whitespace() {
            out.push(match c {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                _ => Tok::Other,
            });
        }
        i += 1;
    }
    out
}

/// Parses a use-tree after `prefix::` at `toks[i]`; pushes every full path. Returns the index
/// after the tree.
fn use_tree(toks: &[Tok], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i) {
            Some(Tok::Ident(s)) => {
                if s != "self" {
                    path.push(s.clone());
                }
                i += 1;
                if toks.get(i) == Some(&Tok::PathSep) {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match toks.get(i) {
                        None => return i,
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::Ident(_)) | Some(Tok::Open) => {
                            i = use_tree(toks, i, &path, out);
                            // Skip `as alias` and anything else up to `,` or `}`.
                            while !matches!(toks.get(i), None | Some(Tok::Comma | Tok::Close)) {
                                i += 1;
                            }
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            _ => {
                // `crate::*` or a trailing `::` (glob): the module path so far.
                out.push(path);
                return i;
            }
        }
    }
}

/// The module path of a source file: `a/b.rs` and `a/b/mod.rs` are `a::b`.
fn file_module(file: &str) -> Vec<String> {
    let f = file.strip_suffix(".rs").unwrap_or(file);
    let f = f.strip_suffix("/mod").unwrap_or(f);
    f.split('/').map(str::to_string).collect()
}

/// Every path to a module of the crate in `src`, made absolute: `crate::...`, and, for a file
/// whose module path is `module`, `super::...`, `self::...` and `child::...` for the modules
/// the file declares with `mod child;` (a parent reaching into its children counts as much as
/// a child reaching up with `super::`).
fn module_paths(src: &str, module: &[String]) -> Vec<Vec<String>> {
    let toks = tokens(&strip(src));
    let mut children = BTreeSet::new();
    for w in toks.windows(3) {
        if w[0] == Tok::Ident("mod".into())
            && let Tok::Ident(name) = &w[1]
            && w[2] == Tok::Other
        {
            children.insert(name.clone());
        }
    }
    let mut out = Vec::new();
    // Inline modules (`mod tests { ... }`): their names and the brace depth they opened at, so
    // `super::` inside them climbs from the right place.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i + 1 < toks.len() {
        match &toks[i] {
            Tok::Open => {
                depth += 1;
                i += 1;
                continue;
            }
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                i += 1;
                continue;
            }
            Tok::Ident(m) if m == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            _ => {}
        }
        let module: Vec<String> = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let module = module.as_slice();
        let after_sep = i > 0 && toks[i - 1] == Tok::PathSep;
        let Tok::Ident(first) = &toks[i] else {
            i += 1;
            continue;
        };
        if after_sep || toks[i + 1] != Tok::PathSep {
            i += 1;
            continue;
        }
        if first == "crate" {
            i = use_tree(&toks, i + 2, &[], &mut out);
            continue;
        }
        if module.is_empty() {
            i += 1;
            continue;
        }
        // Relative paths: climb `super::` links, then the rest is below that module.
        let mut base = module.to_vec();
        let mut j = i;
        let mut relative = false;
        loop {
            match &toks[j] {
                Tok::Ident(s) if s == "super" && toks.get(j + 1) == Some(&Tok::PathSep) => {
                    base.pop();
                    j += 2;
                    relative = true;
                }
                Tok::Ident(s) if s == "self" && toks.get(j + 1) == Some(&Tok::PathSep) => {
                    j += 2;
                    relative = true;
                }
                _ => break,
            }
        }
        if !relative {
            if inline.is_empty() && children.contains(first) {
                i = use_tree(&toks, i, module, &mut out);
            } else {
                i += 1;
            }
            continue;
        }
        i = use_tree(&toks, j, &base, &mut out);
    }
    out
}

/// The module file of a crate for module path `m` (e.g. ["devices", "nvdimm"]), if any.
fn module_file(files: &BTreeSet<String>, m: &[String]) -> Option<String> {
    if m.is_empty() {
        return None;
    }
    let base = m.join("/");
    [format!("{base}.rs"), format!("{base}/mod.rs")]
        .into_iter()
        .find(|f| files.contains(f))
}

/// Names re-exported by the crate root with `pub use module::...`: name → module path.
fn root_reexports(root_src: &str) -> BTreeMap<String, Vec<String>> {
    let toks = tokens(&strip(root_src));
    let mut map = BTreeMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if toks[i] == Tok::Ident("use".into())
            && let Some(Tok::Ident(first)) = toks.get(i + 1)
        {
            let (start, prefix) = match first.as_str() {
                "crate" | "self" => (i + 3, Vec::new()),
                _ => (i + 1, Vec::new()),
            };
            let mut paths = Vec::new();
            i = use_tree(&toks, start, &prefix, &mut paths);
            for p in paths {
                if let Some((name, module)) = p.split_last()
                    && !module.is_empty()
                {
                    map.insert(name.clone(), module.to_vec());
                }
            }
        } else {
            i += 1;
        }
    }
    map
}

/// File → files it refers to through `crate::` paths (self references dropped).
type Graph = BTreeMap<String, BTreeSet<String>>;

fn import_graph(src_dir: &Path) -> Graph {
    let mut list = Vec::new();
    rust_files(src_dir, "", &mut list);
    let files: BTreeSet<String> = list.iter().cloned().collect();
    let root = ["lib.rs", "main.rs"]
        .into_iter()
        .find(|r| files.contains(*r))
        .map(|r| fs::read_to_string(src_dir.join(r)).unwrap_or_default())
        .unwrap_or_default();
    let reexports = root_reexports(&root);
    let mut graph = Graph::new();
    for f in &list {
        if f == "lib.rs" || f == "main.rs" {
            continue;
        }
        let src = fs::read_to_string(src_dir.join(f)).expect("read source");
        let edges = graph.entry(f.clone()).or_default();
        for path in module_paths(&src, &file_module(f)) {
            let target = (1..=path.len())
                .rev()
                .find_map(|n| module_file(&files, &path[..n]))
                .or_else(|| {
                    let m = reexports.get(path.first()?)?;
                    (1..=m.len())
                        .rev()
                        .find_map(|n| module_file(&files, &m[..n]))
                });
            if let Some(t) = target
                && t != *f
            {
                edges.insert(t);
            }
        }
    }
    graph
}

/// The strongly connected components with more than one file (Tarjan), each sorted.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One concrete circle inside component `comp`, e.g. "a.rs -> b.rs -> a.rs".
fn one_circle(graph: &Graph, comp: &[String]) -> String {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    let start = comp[0].as_str();
    // Breadth-first from start's successors back to start, within the component.
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !inside.contains(w) || prev.contains_key(w) {
                continue;
            }
            prev.insert(w, v);
            if w == start {
                queue.clear();
                break;
            }
            queue.push_back(w);
        }
    }
    let mut path = vec![start];
    let mut cur = prev.get(start).copied();
    while let Some(v) = cur {
        if v == start {
            break;
        }
        path.push(v);
        cur = prev.get(v).copied();
    }
    path.push(start);
    path.reverse();
    path.join(" -> ")
}

fn describe(krate: &str, graph: &Graph) -> Option<String> {
    let found = cycles(graph);
    if found.is_empty() {
        return None;
    }
    let mut s = format!("crates/{krate}/src has import cycles:\n");
    for comp in &found {
        s.push_str(&format!(
            "  {{{}}}, e.g. {}\n",
            comp.join(", "),
            one_circle(graph, comp)
        ));
    }
    Some(s)
}

fn crate_src(krate: &str) -> PathBuf {
    workspace_root().join("crates").join(krate).join("src")
}

#[test]
fn listed_crates_have_no_import_cycles() {
    let mut failures = Vec::new();
    for krate in ACYCLIC_CRATES {
        let dir = crate_src(krate);
        assert!(dir.is_dir(), "{} does not exist", dir.display());
        if let Some(msg) = describe(krate, &import_graph(&dir)) {
            failures.push(msg);
        }
    }
    assert!(failures.is_empty(), "{}", failures.concat());
}

/// Prints every crate's state (and the `crate::` edges of `qmp`); never fails.
#[test]
fn report_every_crate() {
    let mut names: Vec<String> = fs::read_dir(workspace_root().join("crates"))
        .expect("crates/")
        .flatten()
        .filter(|e| e.path().join("src").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for krate in &names {
        let graph = import_graph(&crate_src(krate));
        match describe(krate, &graph) {
            Some(msg) => eprint!("{msg}"),
            None => eprintln!("crates/{krate}/src: no import cycles"),
        }
        if krate == "qmp" {
            for (f, to) in &graph {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                eprintln!("  {f} -> {}", to.join(", "));
            }
        }
    }
}

#[test]
fn the_checker_sees_a_circle() {
    let dir = std::env::temp_dir().join(format!("no_import_cycles_{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("dev")).expect("mkdir");
    let write = |f: &str, s: &str| fs::write(dir.join(f), s).expect("write");
    write("lib.rs", "mod a; mod b; mod dev; pub use b::Thing;");
    write(
        "a.rs",
        "// crate::c is a comment\nuse crate::{dev::{self, x::Y as Z}, json};\nlet s = \"crate::b\";",
    );
    write("dev/mod.rs", "pub mod x;");
    write("dev/x.rs", "fn f() -> crate::Thing { todo!() }");
    write("b.rs", "pub struct Thing; fn g() { crate::a::h() }");
    let graph = import_graph(&dir);
    let edges = |f: &str| -> Vec<&str> { graph[f].iter().map(String::as_str).collect() };
    assert_eq!(edges("a.rs"), ["dev/mod.rs", "dev/x.rs"]);
    assert_eq!(edges("dev/x.rs"), ["b.rs"]);
    assert_eq!(edges("b.rs"), ["a.rs"]);
    let found = cycles(&graph);
    assert_eq!(found, [vec!["a.rs", "b.rs", "dev/x.rs"]]);
    assert_eq!(
        one_circle(&graph, &found[0]),
        "a.rs -> dev/x.rs -> b.rs -> a.rs"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn super_self_and_child_paths_are_edges() {
    let dir = std::env::temp_dir().join(format!("no_import_cycles_rel_{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("m")).expect("mkdir");
    let write = |f: &str, s: &str| fs::write(dir.join(f), s).expect("write");
    write("lib.rs", "mod m;");
    write(
        "m/mod.rs",
        "mod state; mod hot;\nuse self::state::S;\nfn f() { hot::g(); std::mem::drop(1); }",
    );
    write("m/state.rs", "use super::hot::E; pub struct S;");
    write(
        "m/hot.rs",
        "use super::state::S; pub fn g() {} pub struct E;",
    );
    let graph = import_graph(&dir);
    let edges = |f: &str| -> Vec<&str> { graph[f].iter().map(String::as_str).collect() };
    assert_eq!(edges("m/mod.rs"), ["m/hot.rs", "m/state.rs"]);
    assert_eq!(edges("m/state.rs"), ["m/hot.rs"]);
    assert_eq!(edges("m/hot.rs"), ["m/state.rs"]);
    assert_eq!(cycles(&graph), [vec!["m/hot.rs", "m/state.rs"]]);
    let _ = fs::remove_dir_all(&dir);
}
