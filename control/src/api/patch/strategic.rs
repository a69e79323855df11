//! The strategic merge itself: apimachinery's `mergeMap`, `mergeSlice` and the directive
//! handling around them, function for function, over `serde_json` maps.

use serde_json::{Map, Value};

use super::{
    BAD_PRIMITIVE_LIST, BAD_RETAIN_KEYS, BAD_SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST, DIRECTIVE, PatchError,
    RETAIN_KEYS, SET_ELEMENT_ORDER, Strategy, json_type,
};
use Strategy::{Merge, Replace};

/// The JSON types apimachinery tells apart when it compares an object's and a patch's values
/// (Go's `reflect.Type` of decoded JSON: integers and floats differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    List,
    Map,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::List,
        Value::Object(_) => Kind::Map,
    }
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE || k == RETAIN_KEYS || k.starts_with(SET_ELEMENT_ORDER) || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// apimachinery's `removeDirectives` for a value taken from the patch: a map holding `$patch`
/// is dropped (`None`), and so are the other directive keys inside it, which apimachinery
/// leaves for typed decoding to discard.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            let cleaned = m
                .into_iter()
                .filter(|(k, _)| !is_directive_key(k))
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(cleaned))
        }
        Value::Array(a) => Some(Value::Array(clean_list(a))),
        v => Some(v),
    }
}

fn clean_list(a: Vec<Value>) -> Vec<Value> {
    a.into_iter().filter_map(remove_directives).collect()
}

/// Strips directives from a map that replaces another (its own `$patch` already removed).
fn clean_map(m: Map<String, Value>) -> Map<String, Value> {
    match remove_directives(Value::Object(m)) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// apimachinery's `discardNullValuesFromPatch`: a patch value with nowhere to merge into keeps
/// no `null`s.
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// A patch value stored where the object has nothing to merge it with.
fn new_value(mut v: Value) -> Option<Value> {
    discard_nulls(&mut v);
    remove_directives(v)
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// apimachinery's `extractKey`: the field a `$prefix/field` directive names.
fn directive_field<'a>(key: &'a str, prefix: &str, malformed: &str) -> Result<&'a str, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field),
        _ => Err(PatchError::InvalidDirective(malformed.to_string())),
    }
}

/// Go's `%s` of a `$patch` value, for the unknown-patch-type message.
fn directive_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::MergeFailed(format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(m.clone())
    ))
}

/// The value a list element is ordered and matched by: its merge key for maps, itself for
/// scalars (apimachinery's `index` helper; a map without the key has `null`).
fn order_key<'a>(v: &'a Value, key: &str) -> &'a Value {
    if key.is_empty() {
        v
    } else {
        v.get(key).unwrap_or(&Value::Null)
    }
}

fn position(list: &[Value], item: &Value, key: &str) -> Option<usize> {
    let wanted = order_key(item, key);
    list.iter().position(|v| order_key(v, key) == wanted)
}

/// The single element type of some lists (apimachinery's `sliceElementType`).
fn element_kind(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_of(v);
        match kind {
            None if k == Kind::List => {
                return Err(PatchError::MergeFailed("lists of lists are not supported".to_string()));
            }
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::MergeFailed(format!(
                    "list element types are not identical: {}",
                    Value::Array(lists.iter().map(|l| Value::Array(l.to_vec())).collect())
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| PatchError::MergeFailed("no elements in any of the given slices".to_string()))
}

/// The strategic merge of one patch into one object, with the struct tags of its kind.
pub(super) struct Merger<'a> {
    /// The struct tags of the field at a path.
    pub(super) lookup: &'a dyn Fn(&str) -> Option<Strategy>,
}

impl Merger<'_> {
    /// The merge key of a list at `path` if it merges (`Some("")` for scalars).
    fn merge_key(&self, path: &str) -> Option<&'static str> {
        match (self.lookup)(path) {
            Some(Merge(key)) => Some(key),
            _ => None,
        }
    }

    /// apimachinery's `mergeMap`.
    pub(super) fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    Ok(clean_map(patch))
                }
                // The map is emptied rather than removed, as apimachinery does.
                Some("delete") => Ok(Map::new()),
                _ => Err(PatchError::InvalidDirective(format!(
                    "unknown patch type: {} in map: {}",
                    directive_text(directive),
                    Value::Object(patch.clone())
                ))),
            };
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.apply_set_element_order(&mut original, &mut patch, path)?;

        for (k, patch_v) in patch {
            let (key, delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                (
                    directive_field(&k, DELETE_FROM_PRIMITIVE_LIST, BAD_PRIMITIVE_LIST)?.to_string(),
                    true,
                )
            } else {
                (k, false)
            };
            if patch_v.is_null() {
                original.remove(&key);
                continue;
            }
            let field_path = child(path, &key);
            let merged = match (original.get_mut(&key), patch_v) {
                (None, _) if delete_list => continue,
                (None, p) => new_value(p),
                (Some(Value::Object(o)), Value::Object(p)) => {
                    let o = std::mem::take(o);
                    Some(Value::Object(if (self.lookup)(&field_path) == Some(Replace) {
                        clean_map(p)
                    } else {
                        self.merge_map(o, p, &field_path)?
                    }))
                }
                (Some(Value::Array(o)), Value::Array(p)) => {
                    let o = std::mem::take(o);
                    Some(Value::Array(self.merge_list(o, p, &field_path, delete_list)?))
                }
                // A deletion list never replaces a value of another type; a scalar of the same
                // type is replaced even by one (apimachinery's quirk, kept).
                (Some(o), p) if delete_list && kind_of(o) != kind_of(&p) => continue,
                (Some(_), p) => new_value(p),
            };
            match merged {
                Some(v) => original.insert(key, v),
                None => original.remove(&key),
            };
        }
        Ok(original)
    }

    /// apimachinery's `mergeSliceHandler`: lists merge when tagged (or when a
    /// `$deleteFromPrimitiveList` names them), and are otherwise replaced.
    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &str,
        delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        match self.merge_key(path) {
            Some(key) => self.merge_slice(original, patch, path, key, delete_list),
            None if delete_list => self.merge_slice(original, patch, path, "", true),
            None => Ok(clean_list(patch)),
        }
    }

    /// apimachinery's `mergeSlice`: scalars are united (or removed, for a deletion list), maps
    /// merged by key after `$patch` elements are applied; then the result is ordered with the
    /// patch's elements in the patch's order, interleaved with the object's other elements in
    /// the object's order.
    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &str,
        key: &str,
        delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let kind = element_kind(&[&original, &patch])?;
        let (original, patch, merged, key) = if kind != Kind::Map {
            if delete_list {
                return Ok(original.into_iter().filter(|v| !patch.contains(v)).collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            (original, patch, merged, "")
        } else {
            if key.is_empty() {
                return Err(PatchError::MergeFailed(format!(
                    "cannot merge lists without merge key for {path}"
                )));
            }
            let (original, patch) = apply_special_elements(original, patch, key)?;
            let merged = self.merge_by_key(original.clone(), patch.clone(), key, path)?;
            (original, patch, merged, key)
        };
        let (in_patch, server_only) = partition(merged, &patch, key)?;
        normalize_element_order(in_patch, server_only, &patch, &original, key, kind)
    }

    /// apimachinery's `mergeSliceWithoutSpecialElements`: each patch element merges into the
    /// object's element with the same key, or is appended.
    fn merge_by_key(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        for v in patch {
            let Value::Object(p) = v else { continue };
            let Some(wanted) = p.get(key) else {
                return Err(no_merge_key(&p, key));
            };
            match original.iter().position(|o| o.get(key) == Some(wanted)) {
                Some(i) => {
                    let o = match std::mem::take(&mut original[i]) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    original[i] = Value::Object(self.merge_map(o, p, path)?);
                }
                None => original.extend(new_value(Value::Object(p))),
            }
        }
        Ok(original)
    }

    /// apimachinery's `mergePatchIntoOriginal`: each `$setElementOrder/<field>` merges its list
    /// (if the patch has one) and then orders the result as the directive lists, elements it
    /// does not name keeping their place relative to the object's order.
    fn apply_set_element_order(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &str,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for k in keys {
            let Some(Value::Array(order)) = patch.remove(&k) else {
                return Err(PatchError::InvalidDirective(BAD_SET_ELEMENT_ORDER.to_string()));
            };
            let field = directive_field(&k, SET_ELEMENT_ORDER, BAD_SET_ELEMENT_ORDER)?.to_string();
            let list_at = |m: &Map<String, Value>| match m.get(&field) {
                None => Ok(None),
                Some(Value::Array(a)) => Ok(Some(a.clone())),
                Some(other) => Err(PatchError::MergeFailed(format!(
                    "expected a list for {field}, but received {}",
                    json_type(other)
                ))),
            };
            let (in_original, in_patch) = (list_at(original)?, list_at(patch)?);
            let field_path = child(path, &field);
            let key = self.merge_key(&field_path).unwrap_or_default();
            validate_order(in_patch.as_deref().unwrap_or_default(), &order, key)?;
            let kind = element_kind(&[
                in_original.as_deref().unwrap_or_default(),
                in_patch.as_deref().unwrap_or_default(),
            ]);
            let server_order = match (&in_original, &in_patch) {
                (Some(o), Some(p)) if !key.is_empty() => go_aliased_order(o, p, key),
                (o, _) => o.clone().unwrap_or_default(),
            };
            let merged = match (in_original, in_patch) {
                (Some(o), None) => o,
                (None, Some(p)) => clean_list(p),
                (Some(o), Some(p)) => self.merge_list(o, p, &field_path, false)?,
                (None, None) => continue,
            };
            let (named, others) = partition(merged, &order, key)?;
            let ordered = normalize_element_order(named, others, &order, &server_order, key, kind?)?;
            original.insert(field.clone(), Value::Array(ordered));
            patch.remove(&field);
        }
        Ok(())
    }
}

/// The object's list as apimachinery sees it when it orders a merged list by
/// `$setElementOrder`: its `originalFieldValue` shares the backing array that merging just
/// rewrote in place (deletions shift elements left, leaving the last one twice; new elements
/// are appended into the space freed), and kubectl-apply results depend on that. Only merge
/// keys are read from the result.
fn go_aliased_order(original: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let n = original.len();
    let mut backing = original.to_vec();
    let mut len = n;
    let directive = |v: &Value| v.get(DIRECTIVE).and_then(Value::as_str).map(str::to_string);
    for wanted in patch
        .iter()
        .filter(|v| directive(v).as_deref() == Some("delete"))
        .filter_map(|v| v.get(key))
    {
        while let Some(i) = backing[..len].iter().position(|o| o.get(key) == Some(wanted)) {
            let last = backing[len - 1].clone();
            backing[i..len].rotate_left(1);
            backing[len - 1] = last;
            len -= 1;
        }
    }
    if patch.iter().any(|v| directive(v).as_deref() == Some("replace")) {
        return backing;
    }
    let mut present: Vec<Value> = backing[..len].iter().map(|v| order_key(v, key).clone()).collect();
    for v in patch.iter().filter(|v| v.get(DIRECTIVE).is_none()) {
        let wanted = order_key(v, key);
        if present.contains(wanted) {
            continue;
        }
        if len < n {
            backing[len] = v.clone();
        }
        len += 1;
        present.push(wanted.clone());
    }
    backing
}

/// apimachinery's `applyRetainKeysDirective`: keep only the listed keys of the object's map;
/// every key the patch sets must be listed.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::InvalidDirective(BAD_RETAIN_KEYS.to_string()));
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !v.is_null() && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST) && !k.starts_with(SET_ELEMENT_ORDER) && !listed(k)
    });
    if unlisted {
        return Err(PatchError::InvalidDirective(BAD_RETAIN_KEYS.to_string()));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// apimachinery's `mergeSliceWithSpecialElements`: `{$patch: delete, key: v}` removes the
/// object's elements with that key, `{$patch: replace}` makes the patch's other elements the
/// whole list. Returns the object's list and the patch's ordinary elements.
fn apply_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(wanted) = v.get(key) else {
                    return Err(no_merge_key(v.as_object().unwrap_or(&Map::new()), key));
                };
                original.retain(|o| o.get(key) != Some(wanted));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::InvalidDirective(
                    "merging lists cannot yet be specified in the patch".to_string(),
                ));
            }
            _ => {
                return Err(PatchError::InvalidDirective(format!(
                    "unknown patch type: {} in map: {v}",
                    directive_text(directive)
                )));
            }
        }
    }
    if replace {
        Ok((clean_list(plain), Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Splits `merged` into the elements `by` names (by key, or by value for scalars) and the rest.
fn partition(merged: Vec<Value>, by: &[Value], key: &str) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if !key.is_empty() {
        for v in merged.iter().chain(by) {
            match v {
                Value::Object(m) if !m.contains_key(key) => return Err(no_merge_key(m, key)),
                Value::Object(_) => {}
                other => {
                    return Err(PatchError::MergeFailed(format!(
                        "expected a map, but received {}",
                        json_type(other)
                    )));
                }
            }
        }
    }
    Ok(merged.into_iter().partition(|v| position(by, v, key).is_some()))
}

/// apimachinery's `normalizeElementOrder`: the patch's elements sorted by `patch_order`, the
/// others by `server_order`, then interleaved: an object element goes before a patch element
/// only when both are in the object and it came first there.
fn normalize_element_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let in_patch = sort_by_order(in_patch, patch_order, key, kind)?;
    let server_only = sort_by_order(server_only, server_order, key, kind)?;
    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let (mut left, mut right) = (server_only.into_iter().peekable(), in_patch.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, key), position(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Ok(out),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
}

/// apimachinery's `normalizeSliceOrder`: a stable sort by position in `order`. (Elements
/// missing from `order` cannot occur on apimachinery's paths; they go last here.)
fn sort_by_order(mut items: Vec<Value>, order: &[Value], key: &str, kind: Kind) -> Result<Vec<Value>, PatchError> {
    if kind == Kind::Map {
        for v in items.iter().chain(order) {
            match v {
                Value::Object(m) if !m.contains_key(key) => return Err(no_merge_key(m, key)),
                Value::Object(_) => {}
                other => {
                    return Err(PatchError::MergeFailed(format!(
                        "expected a map, but received {}",
                        json_type(other)
                    )));
                }
            }
        }
    }
    items.sort_by_key(|v| position(order, v, key).unwrap_or(usize::MAX));
    Ok(items)
}

/// apimachinery's `validatePatchWithSetOrderList`: the patch list's elements (deletions aside)
/// must appear in the `$setElementOrder` list, in the same relative order.
fn validate_order(patch_list: &[Value], order: &[Value], key: &str) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let kept: Vec<&Value> = if key.is_empty() {
        patch_list.iter().collect()
    } else {
        patch_list
            .iter()
            .filter(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
            .collect()
    };
    let (mut pi, mut si) = (0, 0);
    while pi < kept.len() && si < order.len() {
        if kept[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        let equal = if key.is_empty() {
            kept[pi] == &order[si]
        } else {
            match (kept[pi].get(key), order[si].get(key)) {
                (Some(a), Some(b)) => a == b,
                (None, _) => return Err(no_merge_key(kept[pi].as_object().unwrap_or(&Map::new()), key)),
                (_, None) => return Err(no_merge_key(order[si].as_object().unwrap_or(&Map::new()), key)),
            }
        };
        if equal {
            pi += 1;
        }
        si += 1;
    }
    if pi < kept.len() {
        return Err(PatchError::InvalidDirective(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}
