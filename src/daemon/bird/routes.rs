//! BIRD's announced routes, outside `bird.conf`: the `route PREFIX blackhole;` lines live in
//! small files under `bird-routes/` beside it, which the static protocols include with a glob
//! (`include "bird-routes/v4*.conf";`, relative to bird.conf's own directory, as BIRD resolves
//! it). BIRD has no runtime route command and `birdc configure` re-reads whatever it includes,
//! so this is what lets one object change cost bgpgen O(change): the change rewrites the one
//! small file holding its prefix, not an 8 MB bird.conf.
//!
//! Which file a route is in is a pure function of the set of announced routes (so a whole render
//! and a chain of incremental updates give byte-identical files, tested):
//!
//! - each family's routes form a binary trie over a stable 64-bit hash of the prefix
//!   ([`hash`]), top bit first;
//! - a node is split into its two children exactly when more than [`LEAF_MAX`] routes fall under
//!   it (and it is less than [`MAX_DEPTH`] bits deep); every non-empty leaf is one file, named by
//!   its bits (`v4.conf` for the root, `v4-0110.conf` four levels down), holding its lines sorted
//!   by prefix; an unsplit root is written even when empty (BIRD refuses an `include` pattern in
//!   a directory that does not exist, and Git keeps no empty directory).
//!
//! So a cluster of up to 256 routes per family has one file per family (easy to review), 100k
//! routes spread over a few hundred files of 128-256 lines, and a change rewrites at most
//! [`LEAF_MAX`] lines whatever the size: a file crossing the bound splits into its children or
//! merges back into its parent (a subtree of at most 256 lines), never a re-layout of the rest.
//! A fixed bucket count would instead either scatter a small cluster over hundreds of files or
//! grow each bucket with the cluster; a bucket count derived from the route count re-lays out
//! every file when the count crosses a threshold (and back, on every change at the boundary).
//!
//! The lines are not templated: they are written here, in the same form as the template used to
//! write them, so that the incremental path and the whole render cannot disagree. A user's
//! `bird.conf.j2` still receives `routes_v4`/`routes_v6` and may inline them instead.

use std::collections::{BTreeMap, HashMap, HashSet};

use ipnet::IpNet;

use crate::engine::Delta;
use crate::intent::{Intent, NextHop, Route};
use crate::model::Family;

/// The directory beside bird.conf holding the route files; everything `*.conf` in it is
/// bgpgen's (a file a render does not produce is stale and removed).
pub const DIR: &str = "bird-routes";
/// At most this many lines per file, unless [`MAX_DEPTH`] is reached.
pub const LEAF_MAX: usize = 256;
/// Bits of the hash a file name can use (never reached in practice: 2^24 files).
const MAX_DEPTH: u8 = 24;

/// The route line, as the static protocol reads it.
pub fn line(r: &Route) -> String {
    format!(
        "  route {} blackhole;  # {}\n",
        r.prefix,
        crate::render::source_comment(&r.sources)
    )
}

/// A stable hash of a prefix: FNV-1a over its length and address bytes, then the splitmix64
/// finalizer (FNV's top bits alone are poorly mixed). It decides file names: changing it moves
/// every route to another file once.
pub fn hash(prefix: &IpNet) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(prefix.prefix_len());
    match prefix.addr() {
        std::net::IpAddr::V4(a) => a.octets().into_iter().for_each(&mut eat),
        std::net::IpAddr::V6(a) => a.octets().into_iter().for_each(&mut eat),
    }
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A node of one family's trie: the first `depth` bits of the hash (right-aligned in `bits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Node {
    family: Family,
    depth: u8,
    bits: u64,
}

impl Node {
    fn root(family: Family) -> Node {
        Node {
            family,
            depth: 0,
            bits: 0,
        }
    }

    /// The bit of `h` that picks the child of this node.
    fn bit_of(self, h: u64) -> u64 {
        (h >> (63 - u32::from(self.depth))) & 1
    }

    fn child(self, bit: u64) -> Node {
        Node {
            family: self.family,
            depth: self.depth + 1,
            bits: (self.bits << 1) | bit,
        }
    }

    /// `bird-routes/v4-0110.conf`.
    fn file_name(self) -> String {
        let family = match self.family {
            Family::Ipv4Unicast => "v4",
            Family::Ipv6Unicast => "v6",
        };
        let mut name = format!("{DIR}/{family}");
        if self.depth > 0 {
            name.push('-');
            for i in (0..self.depth).rev() {
                name.push(if (self.bits >> i) & 1 == 1 { '1' } else { '0' });
            }
        }
        name.push_str(".conf");
        name
    }

    fn splits(count: usize, depth: u8) -> bool {
        count > LEAF_MAX && depth < MAX_DEPTH
    }
}

const FAMILIES: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

fn family_index(f: Family) -> usize {
    match f {
        Family::Ipv4Unicast => 0,
        Family::Ipv6Unicast => 1,
    }
}

/// The files of every announced route of `intent`: (name, contents), sorted by name.
pub fn files(intent: &Intent) -> Vec<(String, String)> {
    files_of(&intent.routes)
}

/// [`files`] of the announced ones of `routes`.
pub(crate) fn files_of(routes: &[Route]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    build(routes, Some(&mut out));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The layout of `intent`'s route files (what [`files`] writes), without writing a line.
pub fn layout(intent: &Intent) -> Layout {
    layout_of(&intent.routes)
}

/// [`layout`] of the announced ones of `routes`.
pub(crate) fn layout_of(routes: &[Route]) -> Layout {
    build(routes, None)
}

/// Where the routes of the files on disk are: the count under every node and which nodes are
/// split, with the next hop every route of a family shares (bird.conf's export filter carries
/// it, so a delta that would change it is no route-only change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    counts: HashMap<Node, usize>,
    internal: HashSet<Node>,
    /// Per family: the next hop all its routes have (`None`: no route); `uniform` false when
    /// they differ (then every change is a whole render).
    hops: [Option<NextHop>; 2],
    uniform: bool,
}

fn build(routes: &[Route], mut out: Option<&mut Vec<(String, String)>>) -> Layout {
    let mut layout = Layout {
        counts: HashMap::new(),
        internal: HashSet::new(),
        hops: [None, None],
        uniform: true,
    };
    for family in FAMILIES {
        let mut items: Vec<(u64, &Route)> = routes
            .iter()
            .filter(|r| r.family == family && !r.unreachable)
            .map(|r| (hash(&r.prefix), r))
            .collect();
        for (_, r) in &items {
            let hop = &mut layout.hops[family_index(family)];
            match hop {
                None => *hop = Some(r.next_hop),
                Some(h) if *h != r.next_hop => layout.uniform = false,
                Some(_) => {}
            }
        }
        items.sort_unstable_by_key(|(h, r)| (*h, r.prefix));
        layout.build_node(Node::root(family), &items, out.as_deref_mut());
    }
    layout
}

/// A file the incremental update changes: its contents on disk before (for a rollback) and
/// after (`None`: removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The files on disk do not hold what the layout says: only a whole render can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent(pub String);

/// What an engine delta means for the route files: `Ok(None)` when it also changes bird.conf
/// (the next hop its export filters carry), so it is no route-only change.
pub type Update = Result<Option<Vec<Change>>, Inconsistent>;

/// What a delta does to one prefix: whether its line is in the files now, and its line and
/// next hop after (`None`: not announced).
#[derive(Default)]
struct Op {
    present: bool,
    line: Option<String>,
    hop: Option<NextHop>,
}

/// One file being changed: its lines by prefix, and what was on disk.
struct Leaf {
    lines: BTreeMap<IpNet, String>,
    before: Option<String>,
}

fn parse_leaf(name: &str, text: &str) -> Result<BTreeMap<IpNet, String>, Inconsistent> {
    let mut lines = BTreeMap::new();
    for l in text.split_inclusive('\n') {
        let prefix = l
            .strip_prefix("  route ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|p| p.parse::<IpNet>().ok())
            .filter(|_| l.ends_with('\n'))
            .ok_or_else(|| Inconsistent(format!("{name}: unexpected line {:?}", clip(l))))?;
        if lines.insert(prefix, l.to_string()).is_some() {
            return Err(Inconsistent(format!("{name}: {prefix} twice")));
        }
    }
    Ok(lines)
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

impl Layout {
    fn count(&self, node: Node) -> usize {
        self.counts.get(&node).copied().unwrap_or(0)
    }

    fn set_count(&mut self, node: Node, count: usize) {
        if count == 0 {
            self.counts.remove(&node);
        } else {
            self.counts.insert(node, count);
        }
    }

    /// A family's root file is written even when empty while it is not split, so that the
    /// directory and each glob always match a file (BIRD refuses `include` of a pattern in a
    /// directory that does not exist, and Git keeps no empty directory).
    fn always_written(&self, node: Node) -> bool {
        node.depth == 0 && !self.internal.contains(&node)
    }

    /// The number of announced routes of a family.
    pub fn routes(&self, family: Family) -> usize {
        self.count(Node::root(family))
    }

    fn build_node(
        &mut self,
        node: Node,
        items: &[(u64, &Route)],
        mut out: Option<&mut Vec<(String, String)>>,
    ) {
        if items.is_empty() {
            if node.depth == 0
                && let Some(out) = out
            {
                out.push((node.file_name(), String::new()));
            }
            return;
        }
        self.counts.insert(node, items.len());
        if Node::splits(items.len(), node.depth) {
            self.internal.insert(node);
            let split = items.partition_point(|(h, _)| node.bit_of(*h) == 0);
            self.build_node(node.child(0), &items[..split], out.as_deref_mut());
            self.build_node(node.child(1), &items[split..], out);
            return;
        }
        let Some(out) = out else {
            return;
        };
        let mut routes: Vec<&Route> = items.iter().map(|(_, r)| *r).collect();
        routes.sort_unstable_by_key(|r| r.prefix);
        let text: String = routes.into_iter().map(line).collect();
        out.push((node.file_name(), text));
    }

    /// The leaf holding hash `h`, and the nodes above it (root first).
    fn path(&self, family: Family, h: u64) -> Vec<Node> {
        let mut node = Node::root(family);
        let mut path = vec![node];
        while self.internal.contains(&node) {
            node = node.child(node.bit_of(h));
            path.push(node);
        }
        path
    }

    /// Applies `delta` to the layout and says which files change; `read` gives a file's
    /// contents on disk (`None`: absent). Unless the result is `Ok(Some(_))` the layout is left
    /// half-updated: drop it (a whole render builds it again).
    pub fn update(
        &mut self,
        delta: &Delta,
        read: &mut dyn FnMut(&str) -> std::io::Result<Option<String>>,
    ) -> Update {
        if !self.uniform {
            return Ok(None);
        }
        let mut ops: BTreeMap<(Family, IpNet), Op> = BTreeMap::new();
        for r in delta
            .removed
            .iter()
            .chain(delta.changed.iter().map(|c| &c.before))
        {
            if !r.unreachable {
                ops.entry((r.family, r.prefix)).or_default().present = true;
            }
        }
        for r in delta
            .added
            .iter()
            .chain(delta.changed.iter().map(|c| &c.after))
        {
            let op = ops.entry((r.family, r.prefix)).or_default();
            (op.line, op.hop) = if r.unreachable {
                (None, None)
            } else {
                (Some(line(r)), Some(r.next_hop))
            };
        }
        // bird.conf's export filter carries the family's next hop when it is an address, and
        // says `next hop self` when the family has no route: a delta that changes that is not
        // a route-only change.
        let before: [Option<NextHop>; 2] = FAMILIES.map(|f| self.hops[family_index(f)]);
        for ((family, _), Op { line, hop, .. }) in &ops {
            if line.is_some() {
                let empty = self.routes(*family) == 0;
                let slot = &mut self.hops[family_index(*family)];
                match (*slot, hop) {
                    (None, Some(h)) if empty => *slot = Some(*h),
                    (Some(s), Some(h)) if s == *h => {}
                    _ => return Ok(None),
                }
            }
        }
        let mut leaves: HashMap<Node, Leaf> = HashMap::new();
        for ((family, prefix), op) in ops {
            let h = hash(&prefix);
            if op.present {
                self.remove(family, prefix, h, &mut leaves, read)?;
            }
            if let Some(l) = op.line {
                self.add(family, prefix, h, l, &mut leaves, read)?;
            }
        }
        for f in FAMILIES {
            if self.routes(f) == 0 {
                self.hops[family_index(f)] = None;
            }
        }
        let shown = |h: Option<NextHop>| match h {
            Some(NextHop::Address(ip)) => Some(ip),
            _ => None,
        };
        if FAMILIES
            .iter()
            .any(|f| shown(before[family_index(*f)]) != shown(self.hops[family_index(*f)]))
        {
            return Ok(None);
        }
        let mut changes: Vec<Change> = leaves
            .into_iter()
            .filter_map(|(node, leaf)| {
                let kept = !leaf.lines.is_empty() || self.always_written(node);
                let after = kept.then(|| leaf.lines.into_values().collect());
                (after != leaf.before).then(|| Change {
                    name: node.file_name(),
                    before: leaf.before,
                    after,
                })
            })
            .collect();
        changes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(changes))
    }

    /// The file of `node` (read once per update), checked against the count it should hold.
    fn leaf<'a>(
        &self,
        node: Node,
        leaves: &'a mut HashMap<Node, Leaf>,
        read: &mut dyn FnMut(&str) -> std::io::Result<Option<String>>,
    ) -> Result<&'a mut Leaf, Inconsistent> {
        match leaves.entry(node) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(v) => {
                let name = node.file_name();
                let before = read(&name).map_err(|e| Inconsistent(format!("{name}: {e}")))?;
                let lines = match &before {
                    Some(text) => parse_leaf(&name, text)?,
                    None => BTreeMap::new(),
                };
                let expected = if self.internal.contains(&node) {
                    0
                } else {
                    self.count(node)
                };
                if lines.len() != expected {
                    return Err(Inconsistent(format!(
                        "{name} holds {} routes, {expected} expected",
                        lines.len()
                    )));
                }
                Ok(v.insert(Leaf { lines, before }))
            }
        }
    }

    /// One route more (`up`) or less in every node of `path`.
    fn count_along(&mut self, path: &[Node], up: bool) {
        for n in path {
            let c = self.count(*n);
            self.set_count(*n, if up { c + 1 } else { c.saturating_sub(1) });
        }
    }

    fn remove(
        &mut self,
        family: Family,
        prefix: IpNet,
        h: u64,
        leaves: &mut HashMap<Node, Leaf>,
        read: &mut dyn FnMut(&str) -> std::io::Result<Option<String>>,
    ) -> Result<(), Inconsistent> {
        let path = self.path(family, h);
        let last = *path.last().unwrap_or(&Node::root(family));
        if self
            .leaf(last, leaves, read)?
            .lines
            .remove(&prefix)
            .is_none()
        {
            return Err(Inconsistent(format!(
                "{prefix} is not in {}",
                last.file_name()
            )));
        }
        self.count_along(&path, false);
        // The topmost split node that no longer holds more than LEAF_MAX routes takes back
        // its whole subtree (at most LEAF_MAX lines).
        let Some(top) = path
            .iter()
            .copied()
            .find(|n| self.internal.contains(n) && !Node::splits(self.count(*n), n.depth))
        else {
            return Ok(());
        };
        let mut merged = BTreeMap::new();
        let mut stack = vec![top.child(0), top.child(1)];
        let mut below = Vec::new();
        while let Some(n) = stack.pop() {
            if self.internal.contains(&n) {
                stack.extend([n.child(0), n.child(1)]);
            } else {
                merged.append(&mut self.leaf(n, leaves, read)?.lines);
            }
            below.push(n);
        }
        for n in below {
            self.internal.remove(&n);
            self.counts.remove(&n);
        }
        // Read while still split (its file should be absent), then a leaf again.
        self.leaf(top, leaves, read)?.lines = merged;
        self.internal.remove(&top);
        Ok(())
    }

    fn add(
        &mut self,
        family: Family,
        prefix: IpNet,
        h: u64,
        text: String,
        leaves: &mut HashMap<Node, Leaf>,
        read: &mut dyn FnMut(&str) -> std::io::Result<Option<String>>,
    ) -> Result<(), Inconsistent> {
        let path = self.path(family, h);
        let last = *path.last().unwrap_or(&Node::root(family));
        if self
            .leaf(last, leaves, read)?
            .lines
            .insert(prefix, text)
            .is_some()
        {
            return Err(Inconsistent(format!(
                "{prefix} is already in {}",
                last.file_name()
            )));
        }
        self.count_along(&path, true);
        let mut todo = vec![last];
        while let Some(node) = todo.pop() {
            if !Node::splits(self.count(node), node.depth) {
                continue;
            }
            let lines = std::mem::take(&mut self.leaf(node, leaves, read)?.lines);
            let mut halves = [BTreeMap::new(), BTreeMap::new()];
            for (p, l) in lines {
                halves[node.bit_of(hash(&p)) as usize].insert(p, l);
            }
            for (bit, half) in halves.into_iter().enumerate() {
                let child = node.child(bit as u64);
                let n = half.len();
                self.leaf(child, leaves, read)?.lines = half;
                self.set_count(child, n);
                todo.push(child);
            }
            self.internal.insert(node);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::RouteChange;
    use crate::intent::Source;
    use crate::model::{Kind, Name, Policy};

    pub(crate) fn route(id: u32, tag: u32, unreachable: bool, hop: NextHop) -> Route {
        let (prefix, family) = if id % 5 == 4 {
            (format!("fd00::{id:x}/128"), Family::Ipv6Unicast)
        } else {
            (
                format!("10.{}.{}.{}/32", id >> 16, (id >> 8) & 255, id & 255),
                Family::Ipv4Unicast,
            )
        };
        Route {
            prefix: prefix.parse().unwrap(),
            family,
            next_hop: hop,
            sources: vec![Source {
                kind: Kind::Pod,
                namespace: Some(Name::new("ns")),
                name: Name::new(&format!("pod-{id}-{tag}")),
                policy: Policy::Cluster,
            }],
            unreachable,
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    type State = BTreeMap<u32, (u32, bool)>;

    fn routes_of(state: &State) -> Vec<Route> {
        state
            .iter()
            .map(|(id, (tag, un))| route(*id, *tag, *un, NextHop::SelfAddress))
            .collect()
    }

    fn sorted(files: Vec<(String, String)>) -> BTreeMap<String, String> {
        files.into_iter().collect()
    }

    /// The oracle: random route deltas (single routes, bursts that split and merge several
    /// levels, comments and reachability changing) applied incrementally to files on a fake
    /// disk give, after every step, the files and layout a whole render of the same routes
    /// gives.
    #[test]
    fn incremental_updates_equal_the_whole_render() {
        for (seed, start) in [(0x9e37_79b9_7f4a_7c15u64, 300), (7_777_777, 0)] {
            let mut rng = Rng(seed);
            let mut state: State = BTreeMap::new();
            for id in 0..start {
                state.insert(id * 7, (0, false));
            }
            let mut disk = sorted(files_of(&routes_of(&state)));
            let mut layout = build(&routes_of(&state), None);
            let mut deepest = 0;
            for step in 0..200 {
                let burst = match rng.next(10) {
                    0 => 200 + rng.next(700) as usize,
                    1 | 2 => 1 + rng.next(40) as usize,
                    _ => 1 + rng.next(3) as usize,
                };
                let grow = rng.next(2) == 0;
                let mut delta = Delta::default();
                let mut touched = std::collections::BTreeSet::new();
                for _ in 0..burst {
                    let id = rng.next(4000) as u32;
                    if !touched.insert(id) {
                        continue;
                    }
                    match (state.get(&id).copied(), rng.next(4)) {
                        (None, _) if grow || rng.next(4) == 0 => {
                            let un = rng.next(10) == 0;
                            state.insert(id, (0, un));
                            delta.added.push(route(id, 0, un, NextHop::SelfAddress));
                        }
                        (None, _) => {}
                        (Some((tag, un)), 0) => {
                            let after = if rng.next(2) == 0 {
                                (tag + 1, un)
                            } else {
                                (tag, !un)
                            };
                            state.insert(id, after);
                            delta.changed.push(RouteChange {
                                before: route(id, tag, un, NextHop::SelfAddress),
                                after: route(id, after.0, after.1, NextHop::SelfAddress),
                            });
                        }
                        (Some((tag, un)), _) if !grow || rng.next(4) == 0 => {
                            state.remove(&id);
                            delta.removed.push(route(id, tag, un, NextHop::SelfAddress));
                        }
                        (Some(_), _) => {}
                    }
                }
                let mut read = |name: &str| Ok(disk.get(name).cloned());
                let changes = layout
                    .update(&delta, &mut read)
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e:?}"))
                    .expect("a route-only change");
                for c in changes {
                    assert_eq!(disk.get(&c.name), c.before.as_ref(), "{}", c.name);
                    match c.after {
                        Some(text) => disk.insert(c.name, text),
                        None => disk.remove(&c.name),
                    };
                }
                let whole = sorted(files_of(&routes_of(&state)));
                assert_eq!(disk, whole, "seed {seed} step {step}: files");
                assert_eq!(
                    layout,
                    build(&routes_of(&state), None),
                    "seed {seed} step {step}: layout"
                );
                assert!(whole.values().all(|t| t.lines().count() <= LEAF_MAX));
                deepest = deepest.max(whole.keys().map(|k| k.len()).max().unwrap_or(0));
            }
            // Several levels of splits were exercised (`bird-routes/v4-01.conf` and deeper).
            assert!(deepest >= "bird-routes/v4-01.conf".len(), "{deepest}");
        }
    }

    #[test]
    fn a_next_hop_bird_conf_carries_makes_it_no_route_only_change() {
        let hop = NextHop::Address("192.0.2.1".parse().unwrap());
        let one = vec![route(1, 0, false, hop)];
        let mut read = |_: &str| Ok(None);
        // The first route of a family with an explicit next hop: bird.conf's filter changes.
        let mut empty = build(&[], None);
        let add = Delta {
            added: one.clone(),
            ..Delta::default()
        };
        assert_eq!(empty.update(&add, &mut read), Ok(None));
        // Another route with the same next hop: route files only.
        let mut layout = build(&one, None);
        let disk = sorted(files_of(&one));
        let mut read = |name: &str| Ok(disk.get(name).cloned());
        let add = Delta {
            added: vec![route(2, 0, false, hop)],
            ..Delta::default()
        };
        let changes = layout.update(&add, &mut read).unwrap().unwrap();
        assert_eq!(changes.len(), 1);
        // A different next hop: no.
        let mut layout = build(&one, None);
        let add = Delta {
            added: vec![route(3, 0, false, NextHop::SelfAddress)],
            ..Delta::default()
        };
        assert_eq!(layout.update(&add, &mut read), Ok(None));
    }

    #[test]
    fn files_that_are_not_what_was_written_are_inconsistent() {
        let routes: Vec<Route> = (0..10)
            .map(|i| route(i, 0, false, NextHop::SelfAddress))
            .collect();
        let mut layout = build(&routes, None);
        let mut read = |_: &str| Ok(Some("  route 10.0.0.0/32 blackhole;  # x\n".to_string()));
        let add = Delta {
            added: vec![route(20, 0, false, NextHop::SelfAddress)],
            ..Delta::default()
        };
        assert!(layout.update(&add, &mut read).is_err());
    }

    #[test]
    fn file_names_carry_the_bits() {
        let root = Node::root(Family::Ipv4Unicast);
        assert_eq!(root.file_name(), "bird-routes/v4.conf");
        let n = root.child(0).child(1).child(1);
        assert_eq!(n.file_name(), "bird-routes/v4-011.conf");
        assert_eq!(
            Node::root(Family::Ipv6Unicast).child(1).file_name(),
            "bird-routes/v6-1.conf"
        );
    }

    #[test]
    fn the_hash_is_stable() {
        // File names depend on it: a change moves every route once (and this test says so).
        assert_eq!(
            hash(&"10.16.0.5/32".parse().unwrap()),
            hash(&"10.16.0.5/32".parse().unwrap())
        );
        assert_eq!(
            hash(&"10.16.0.5/32".parse().unwrap()),
            0x2c87_ece8_9341_3de8
        );
    }

    #[test]
    fn foreign_lines_are_inconsistent() {
        assert!(parse_leaf("f", "  route 10.0.0.1/32 blackhole;  # x\n").is_ok());
        assert!(parse_leaf("f", "  route 10.0.0.1/32 blackhole;  # x").is_err());
        assert!(parse_leaf("f", "protocol kernel {}\n").is_err());
        assert!(
            parse_leaf(
                "f",
                "  route 10.0.0.1/32 blackhole;\n  route 10.0.0.1/32 blackhole;\n"
            )
            .is_err()
        );
    }
}
