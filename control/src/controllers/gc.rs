//! The garbage collector's owner-reference resolution (`pkg/controller/garbagecollector`'s
//! `attemptToDeleteItem`, `processDeletingDependentsItem` and `orphanDependents`) over one
//! snapshot of every object's identity, owner references, deletion state and finalizers.
//!
//! - Background: an object with owner references, none of which is an existing owner (absent
//!   by uid, or in another namespace, which an owner reference cannot name), is deleted.
//! - Foreground: an owner being deleted with the `foregroundDeletion` finalizer waits for its
//!   dependents: each is deleted (in foreground itself when it has dependents of its own), and
//!   the owner's finalizer is removed once no dependent with `blockOwnerDeletion` is left.
//! - Orphan: an owner being deleted with the `orphan` finalizer has its references removed from
//!   its dependents, then the finalizer.
//! - A dependent with at least one existing owner stays; references to its absent owners and to
//!   owners waiting on their dependents are removed from it.
//!
//! Kube verifies an absent owner with a live GET before deleting (its graph may lag); here the
//! snapshot is the truth, so the shell must build it from a consistent view. Kube's detection
//! of foreground cycles (unblocking references before deleting) is not done.

use std::collections::HashMap;

use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

#[cfg(test)]
mod tests;

/// The finalizer of a foreground deletion (the owner goes after its blocking dependents).
pub const FOREGROUND_DELETION: &str = "foregroundDeletion";
/// The finalizer of an orphaning deletion (dependents lose their reference and stay).
pub const ORPHAN: &str = "orphan";

/// One object as the garbage collector sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<OwnerReference>,
    /// Has a deletion timestamp.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

/// Which object an effect applies to (the shell should use `uid` as a precondition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// A delete's `propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What the shell must do, in order (an owner's orphaning lists the reference removals before
/// the finalizer removal; stop at the first failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Delete the object with this propagation policy.
    Delete { target: Target, propagation: Propagation },
    /// Remove the owner references with these uids from the object.
    RemoveOwnerReferences { target: Target, owner_uids: Vec<String> },
    /// Remove this finalizer from the object.
    RemoveFinalizer { target: Target, finalizer: String },
}

impl Node {
    fn target(&self) -> Target {
        Target {
            uid: self.uid.clone(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in foreground: waiting for its dependents.
    fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND_DELETION)
    }
}

/// How a dependent sees one of its owners.
enum OwnerState {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Absent, or not a valid owner of this dependent.
    Dangling,
    /// Being deleted in foreground.
    Waiting,
}

/// Every deletion, reference removal and finalizer removal due now, when `objects` holds every
/// object of every kind an owner reference can name.
pub fn collect(objects: &[Node]) -> Vec<Effect> {
    collect_following(objects, |_| true)
}

/// [`collect`] when `objects` holds only the kinds `follows` says yes to. An owner of another
/// kind cannot be looked up, so it counts as present: as kube's collector, which does not
/// delete a dependent whose owner's kind it cannot map, only retries.
pub fn collect_following(objects: &[Node], follows: impl Fn(&OwnerReference) -> bool) -> Vec<Effect> {
    let by_uid: HashMap<&str, &Node> = objects.iter().map(|n| (n.uid.as_str(), n)).collect();
    let mut dependents: HashMap<&str, Vec<(&Node, &OwnerReference)>> = HashMap::new();
    for node in objects {
        for r in &node.owners {
            dependents.entry(r.uid.as_str()).or_default().push((node, r));
        }
    }
    let no_dependents = Vec::new();
    let mut effects = Vec::new();
    for node in objects {
        let deps = dependents.get(node.uid.as_str()).unwrap_or(&no_dependents);
        if node.deleting && node.has_finalizer(ORPHAN) {
            for (dep, _) in deps {
                effects.push(Effect::RemoveOwnerReferences {
                    target: dep.target(),
                    owner_uids: vec![node.uid.clone()],
                });
            }
            effects.push(Effect::RemoveFinalizer {
                target: node.target(),
                finalizer: ORPHAN.to_string(),
            });
        }
        if node.deleting_dependents() && !deps.iter().any(|(_, r)| r.block_owner_deletion == Some(true)) {
            effects.push(Effect::RemoveFinalizer {
                target: node.target(),
                finalizer: FOREGROUND_DELETION.to_string(),
            });
        }
        if node.owners.is_empty() || node.deleting {
            continue;
        }
        attempt_to_delete(node, &by_uid, &follows, !deps.is_empty(), &mut effects);
    }
    effects
}

/// Kube's `attemptToDeleteItem` for an object with owners that is not being deleted.
fn attempt_to_delete(
    node: &Node,
    by_uid: &HashMap<&str, &Node>,
    follows: &impl Fn(&OwnerReference) -> bool,
    has_dependents: bool,
    effects: &mut Vec<Effect>,
) {
    let mut solid = false;
    let mut remove = Vec::new();
    let mut waiting = false;
    for r in &node.owners {
        match owner_state(node, r, by_uid, follows) {
            OwnerState::Solid => solid = true,
            OwnerState::Dangling => remove.push(r.uid.clone()),
            OwnerState::Waiting => {
                waiting = true;
                remove.push(r.uid.clone());
            }
        }
    }
    if solid {
        if !remove.is_empty() {
            effects.push(Effect::RemoveOwnerReferences {
                target: node.target(),
                owner_uids: remove,
            });
        }
        return;
    }
    let propagation = if waiting && has_dependents {
        // Its own dependents must go before it, so that the waiting owner waits for them too.
        Propagation::Foreground
    } else if node.has_finalizer(ORPHAN) {
        Propagation::Orphan
    } else if node.has_finalizer(FOREGROUND_DELETION) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    effects.push(Effect::Delete {
        target: node.target(),
        propagation,
    });
}

fn owner_state(
    node: &Node,
    r: &OwnerReference,
    by_uid: &HashMap<&str, &Node>,
    follows: &impl Fn(&OwnerReference) -> bool,
) -> OwnerState {
    let Some(owner) = by_uid.get(r.uid.as_str()) else {
        if !follows(r) {
            return OwnerState::Solid;
        }
        return OwnerState::Dangling;
    };
    // A namespaced owner can only own objects of its namespace (kube reports the reference as
    // invalid and treats the owner as absent).
    if owner.namespace.is_some() && owner.namespace != node.namespace {
        return OwnerState::Dangling;
    }
    if owner.deleting_dependents() {
        OwnerState::Waiting
    } else {
        OwnerState::Solid
    }
}
