//! A relist streamed in, object by object, held back until it is complete (DESIGN section 9: a
//! relist replaces a kind's objects only once complete; an object the rules cannot read keeps
//! its previous version).
//!
//! The cluster source does not collect a kind's whole new list before handing it over (the old
//! and the new 100k pods would be held together): it sends [`Event::RelistBegin`], each object
//! as it arrives ([`Event::Listed`], or [`Event::Kept`] for one the rules cannot read), then
//! [`Event::RelistEnd`]. [`Relists`] compares each listed object with the one held as it
//! arrives and keeps only what the relist will change: the keys of the objects listed equal
//! to those held (sharing the held strings) and the objects that differ. Nothing of the relist
//! reaches the state held before its end; then the differing objects are upserted and the held
//! objects of the kind that were not listed are deleted, as ordinary events.
//!
//! Other events pass through unchanged. Events are in time order: an upsert or delete of a kind
//! during its relist (the cluster source never sends one: a kind's watcher lists, then
//! watches) is applied at once and counts as listed (or not) at the relist's end, as the later
//! word on the object. A whole [`Event::Relist`] of the kind abandons the streamed one.

use std::collections::{BTreeMap, HashSet};

use crate::engine::Event;
use crate::model::{Kind, Name, ObjectRef};
use crate::snapshot::{Object, Snapshot};

/// The key of an object in the [`Snapshot`]'s map of its kind, sharing the held strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    /// Namespaced kinds: (namespace, name).
    Pair(Name, Name),
    /// Cluster-scoped kinds.
    Name(String),
}

/// One kind's relist in progress.
#[derive(Debug, Default)]
struct Staged {
    /// Objects listed (or kept) that are held as they are.
    seen: HashSet<Key>,
    /// Objects listed that differ from those held (or are not held), by key: the last listed.
    changed: BTreeMap<Key, Object>,
}

/// The relists in progress, one per kind at most (module docs).
#[derive(Debug, Default)]
pub struct Relists {
    staged: BTreeMap<Kind, Staged>,
}

fn kind_of(object: &Object) -> Kind {
    match object {
        Object::Pod(_) => Kind::Pod,
        Object::Service(_) => Kind::Service,
        Object::Node(_) => Kind::Node,
        Object::Subnet(_) => Kind::Subnet,
        Object::Eip(_) => Kind::IptablesEip,
        Object::Gateway(_) => Kind::VpcNatGateway,
    }
}

fn object_key(object: &Object) -> Key {
    match object {
        Object::Pod(p) => Key::Pair(p.namespace.clone(), p.name.clone()),
        Object::Service(s) => Key::Pair(s.namespace.clone(), s.name.clone()),
        Object::Node(n) => Key::Name(n.name.clone()),
        Object::Subnet(s) => Key::Name(s.name.clone()),
        Object::Eip(e) => Key::Name(e.name.clone()),
        Object::Gateway(g) => Key::Name(g.name.clone()),
    }
}

/// The key of `object` as held (the held strings), when the held version equals it.
fn held_equal(snapshot: &Snapshot, object: &Object) -> Option<Key> {
    fn same<K: Ord + Clone, V: PartialEq>(map: &BTreeMap<K, V>, key: &K, value: &V) -> Option<K> {
        map.get_key_value(key)
            .filter(|(_, held)| *held == value)
            .map(|(k, _)| k.clone())
    }
    match object {
        Object::Pod(p) => same(&snapshot.pods, &p.key(), p).map(|(ns, n)| Key::Pair(ns, n)),
        Object::Service(s) => same(&snapshot.services, &s.key(), s).map(|(ns, n)| Key::Pair(ns, n)),
        Object::Node(n) => same(&snapshot.nodes, &n.name, n).map(Key::Name),
        Object::Subnet(s) => same(&snapshot.subnets, &s.name, s).map(Key::Name),
        Object::Eip(e) => same(&snapshot.eips, &e.name, e).map(Key::Name),
        Object::Gateway(g) => same(&snapshot.gateways, &g.name, g).map(Key::Name),
    }
}

/// The key of `reference` (fresh strings: for lookups).
fn ref_key(reference: &ObjectRef) -> Key {
    if reference.kind.is_namespaced() {
        let (ns, name) = reference.pair();
        Key::Pair(ns, name)
    } else {
        Key::Name(reference.name.clone())
    }
}

/// The key of `reference` as held, if it is.
fn held_key(snapshot: &Snapshot, reference: &ObjectRef) -> Option<Key> {
    fn held<K: Ord + Clone, V>(map: &BTreeMap<K, V>, key: &K) -> Option<K> {
        map.get_key_value(key).map(|(k, _)| k.clone())
    }
    let pair = |(ns, n)| Key::Pair(ns, n);
    match reference.kind {
        Kind::Pod => held(&snapshot.pods, &reference.pair()).map(pair),
        Kind::Service => held(&snapshot.services, &reference.pair()).map(pair),
        Kind::Node => held(&snapshot.nodes, &reference.name).map(Key::Name),
        Kind::Subnet => held(&snapshot.subnets, &reference.name).map(Key::Name),
        Kind::IptablesEip => held(&snapshot.eips, &reference.name).map(Key::Name),
        Kind::VpcNatGateway => held(&snapshot.gateways, &reference.name).map(Key::Name),
    }
}

/// The held objects of `kind` for which `keep` is false.
fn held_unless(snapshot: &Snapshot, kind: Kind, keep: impl Fn(&Key) -> bool) -> Vec<ObjectRef> {
    fn names<V>(
        map: &BTreeMap<String, V>,
        kind: Kind,
        keep: impl Fn(&Key) -> bool,
    ) -> Vec<ObjectRef> {
        map.keys()
            .filter(|n| !keep(&Key::Name((*n).clone())))
            .map(|n| ObjectRef::cluster(kind, n))
            .collect()
    }
    fn pairs<V>(
        map: &BTreeMap<(Name, Name), V>,
        kind: Kind,
        keep: impl Fn(&Key) -> bool,
    ) -> Vec<ObjectRef> {
        map.keys()
            .filter(|(ns, n)| !keep(&Key::Pair(ns.clone(), n.clone())))
            .map(|(ns, n)| ObjectRef::namespaced(kind, ns, n))
            .collect()
    }
    match kind {
        Kind::Pod => pairs(&snapshot.pods, kind, keep),
        Kind::Service => pairs(&snapshot.services, kind, keep),
        Kind::Node => names(&snapshot.nodes, kind, keep),
        Kind::Subnet => names(&snapshot.subnets, kind, keep),
        Kind::IptablesEip => names(&snapshot.eips, kind, keep),
        Kind::VpcNatGateway => names(&snapshot.gateways, kind, keep),
    }
}

impl Relists {
    /// True while a relist of some kind is in progress.
    pub fn in_progress(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Takes `event` against `snapshot` (the state held, before the event) and returns what is
    /// to be applied to it now, in order: the event itself when it is not part of a relist,
    /// nothing while a relist goes on, the relist's changes at its end (handed out one by one,
    /// so the staged objects are freed as they are applied). Apply them before staging the next
    /// event.
    pub fn stage(&mut self, snapshot: &Snapshot, event: Event) -> Ready {
        let pass = |event| Ready(Inner::One(Some(event)));
        match event {
            Event::RelistBegin(kind) => {
                // A list started again (after an error mid-list) starts from nothing.
                self.staged.insert(kind, Staged::default());
            }
            Event::Listed(object) => {
                let Some(staged) = self.staged.get_mut(&kind_of(&object)) else {
                    // No relist in progress: the object as it is now.
                    return pass(Event::Upsert(object));
                };
                match held_equal(snapshot, &object) {
                    Some(key) => {
                        staged.changed.remove(&key);
                        staged.seen.insert(key);
                    }
                    None => {
                        let key = object_key(&object);
                        staged.seen.remove(&key);
                        staged.changed.insert(key, object);
                    }
                }
            }
            Event::Kept(reference) => {
                if let Some(staged) = self.staged.get_mut(&reference.kind)
                    && let Some(key) = held_key(snapshot, &reference)
                    && !staged.changed.contains_key(&key)
                {
                    staged.seen.insert(key);
                }
            }
            Event::RelistEnd(kind) => {
                let Some(Staged { seen, changed }) = self.staged.remove(&kind) else {
                    // The end of a relist whose beginning was not seen: nothing is known of
                    // what it listed, so nothing is deleted.
                    return Ready(Inner::One(None));
                };
                let gone = held_unless(snapshot, kind, |k| {
                    seen.contains(k) || changed.contains_key(k)
                });
                return Ready(Inner::End(changed.into_values(), gone.into_iter()));
            }
            Event::Upsert(object) => {
                if let Some(staged) = self.staged.get_mut(&kind_of(&object)) {
                    // The later word on the object: held as it is now at the relist's end.
                    let key = object_key(&object);
                    staged.changed.remove(&key);
                    staged.seen.insert(key);
                }
                return pass(Event::Upsert(object));
            }
            Event::Delete(reference) => {
                if let Some(staged) = self.staged.get_mut(&reference.kind) {
                    let key = ref_key(&reference);
                    staged.changed.remove(&key);
                    staged.seen.remove(&key);
                }
                return pass(Event::Delete(reference));
            }
            Event::Relist(kind, objects) => {
                self.staged.remove(&kind);
                return pass(Event::Relist(kind, objects));
            }
            Event::InputWarnings(notes) => return pass(Event::InputWarnings(notes)),
        }
        Ready(Inner::One(None))
    }
}

/// What [`Relists::stage`] hands out to apply: only [`Event::Upsert`], [`Event::Delete`],
/// [`Event::Relist`] and [`Event::InputWarnings`].
pub struct Ready(Inner);

enum Inner {
    One(Option<Event>),
    End(
        std::collections::btree_map::IntoValues<Key, Object>,
        std::vec::IntoIter<ObjectRef>,
    ),
}

impl Iterator for Ready {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        match &mut self.0 {
            Inner::One(event) => event.take(),
            Inner::End(changed, gone) => changed
                .next()
                .map(Event::Upsert)
                .or_else(|| gone.next().map(Event::Delete)),
        }
    }
}
