//! No import circles: within each crate, no module may reach (through
//! `crate::` and `super::` paths) a module that reaches it back. Circles
//! are where a crate stops having layers; the redesign removed five, and
//! this step keeps them out.
//!
//! Modules are the crate's files (`a/b.rs` and `a/b/mod.rs` are `a::b`);
//! the crate root only declares them and is left out, as are a module's
//! references to its own ancestors (a submodule using its parent's items
//! is how Rust nests modules), comments, and everything from a module's
//! first `#[cfg(test)]` on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::Result;

/// The crates whose modules are checked.
const CRATES: &[&str] = &["core", "api", "app", "kdf-worker", "viewer", "ledger", "services", "server", "xtask"];

pub fn check(root: &Path) -> Result {
    let mut found = Vec::new();
    for name in CRATES {
        let graph = graph(&root.join(name).join("src"))?;
        for circle in circles(&graph) {
            found.push(format!("{name}: {}", circle.join(" ↔ ")));
        }
    }
    if found.is_empty() {
        println!("no module imports one that imports it back ({} crates)", CRATES.len());
        Ok(())
    } else {
        Err(format!("modules that import each other in a circle:\n  {}", found.join("\n  ")))
    }
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Each module of the crate under `src`, with the modules it names.
fn graph(src: &Path) -> Result<Graph> {
    let mut files = Vec::new();
    collect(src, src, &mut files)?;
    let names: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).filter(|m| !m.is_empty()).collect();
    let mut graph = Graph::new();
    for (module, text) in files {
        if module.is_empty() {
            continue;
        }
        let parent: Vec<&str> = module.rsplit_once("::").map_or(Vec::new(), |(parent, _)| parent.split("::").collect());
        let mut edges = BTreeSet::new();
        for path in references(&text) {
            let segments: Vec<&str> = match path.split_first() {
                Some((&"crate", rest)) => rest.to_vec(),
                Some((&"super", rest)) => parent.iter().copied().chain(rest.iter().copied()).collect(),
                _ => continue,
            };
            let target = (1..=segments.len()).rev().map(|k| segments[..k].join("::")).find(|m| names.contains(m));
            if let Some(target) = target
                && target != module
                && !module.starts_with(&format!("{target}::"))
            {
                edges.insert(target);
            }
        }
        graph.insert(module, edges);
    }
    Ok(graph)
}

/// The `.rs` files under `dir`, as (module path, text up to its tests).
fn collect(src: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect(src, &path, out)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).map_err(|e| e.to_string())?.with_extension("");
        let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|last| last == "mod" || (parts.len() == 1 && (last == "lib" || last == "main"))) {
            parts.pop();
        }
        if parts.first().is_some_and(|first| first == "bin") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        out.push((parts.join("::"), code));
    }
    Ok(())
}

/// Every path that starts at `crate` or `super`, as its segments; a
/// group (`crate::{a, b::c}`) gives one path per member.
fn references(code: &str) -> Vec<Vec<&str>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let head = &start[..start.len() - 2];
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let begin = from + at;
            from = begin + start.len();
            let preceded = begin > 0 && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_');
            if preceded {
                continue;
            }
            let rest = &code[from..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for member in group[..end].split(',') {
                    let segments = idents(member.trim());
                    if !segments.is_empty() {
                        out.push(std::iter::once(head).chain(segments).collect());
                    }
                }
            } else {
                out.push(std::iter::once(head).chain(idents(rest)).collect());
            }
        }
    }
    out
}

/// The leading `a::b::c` of `text`, as segments (stops at anything else).
fn idents(text: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        segments.push(&rest[..len]);
        match rest[len..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    segments
}

/// The strongly connected components of more than one module (Tarjan).
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    fn found(name: &str, files: &[(&str, &str)]) -> Vec<Vec<String>> {
        let dir = std::env::temp_dir().join(format!("circles-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(&dir, files);
        let result = circles(&graph(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn finds_a_circle_through_paths_groups_and_super() {
        let files = [
            ("lib.rs", "mod a; mod b; mod c; mod d;"),
            ("a.rs", "use crate::{b::thing, d};"),
            ("b.rs", "fn f() { super::c::g() }"),
            ("c.rs", "use crate::a::Item;"),
            ("d.rs", "// crate::a::mentioned only in a comment\n#[cfg(test)]\nuse crate::a::Test;"),
        ];
        assert_eq!(found("circle", &files), vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
    }

    #[test]
    fn layers_nested_modules_and_ancestors_are_not_circles() {
        let files = [
            ("lib.rs", "mod a; mod node; pub use a::X;"),
            ("a.rs", "use crate::node::block::B;"),
            ("node/mod.rs", "mod block; pub const LIMIT: u64 = 1; use block::B;"),
            ("node/block.rs", "use super::LIMIT; use crate::node::LIMIT as L;"),
        ];
        assert!(found("layers", &files).is_empty());
    }
}
