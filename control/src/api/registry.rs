//! The API's verbs over the store, as the apiserver's generic registry implements them: create
//! (names, uid, timestamps), get, list with selectors, update with optimistic concurrency and
//! `generation`, status updates, patches, graceful deletion with finalizers, and watches.
//!
//! Objects are stored as JSON without `metadata.resourceVersion`; the store's revision of the
//! write is the resourceVersion, filled in on every read, as etcd3 storage does.
//!
//! The methods are synchronous (a write is one store transaction, synced to disk): async callers run
//! them through [`Api::call`], which moves them off the async worker threads.

use std::sync::Arc;

use bytes::Bytes;
use capstan_core::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use capstan_core::k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::error::{ApiError, success_status};
use super::patch::{self, PatchType};
use super::resources::{self, ResourceInfo};
use super::selector::{FieldSelector, LabelSelector};
use super::strategy::{self, Write};
use crate::metrics::ControlMetrics;
use crate::store::{Store, StoreError, collection_prefix, object_key};

/// How many times a patch is retried when the object changes between read and write.
const PATCH_RETRIES: usize = 5;

/// The alphabet of generated name suffixes (apimachinery's `rand.String`): no vowels, no
/// look-alike characters, so no words and no confusion.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `fieldValidation`: what to do with fields the schema does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    /// Keep going and warn (the apiserver's default).
    #[default]
    Warn,
    /// Refuse the request (kubectl's default).
    Strict,
}

impl FieldValidation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Ignore" => Ok(Self::Ignore),
            "Warn" | "" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            other => Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of Ignore, Warn, Strict; got {other:?}"
            ))),
        }
    }
}

/// Options every write takes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: admit and answer, store nothing.
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

impl WriteOptions {
    /// For an object this process built from typed values or read from the store and
    /// changed (a controller's write): it can have no unknown fields, so none are looked for.
    pub fn trusted() -> Self {
        WriteOptions {
            field_validation: FieldValidation::Ignore,
            ..WriteOptions::default()
        }
    }
}

/// A write's result: the object as stored and any warnings for the `Warning` header.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Options of a list or watch.
#[derive(Debug, Default)]
pub struct ListOptions {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl ListOptions {
    fn matches(&self, object: &Value) -> bool {
        self.labels.as_ref().is_none_or(|s| s.matches_value(object))
            && self.fields.as_ref().is_none_or(|s| s.matches(object))
    }
}

/// A DELETE's options (`DeleteOptions` body or query).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` (the default) or `Foreground`.
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// What a DELETE answers: the object while its deletion is pending (graceful or finalizers),
/// or, once gone, the object or a `Status` as the kind's registry does.
#[derive(Debug)]
pub struct Deleted {
    pub body: Value,
    /// Whether the object is gone from the store.
    pub gone: bool,
}

/// The API registry: every verb on every served resource, over one store.
pub struct Api {
    store: Arc<dyn Store>,
    /// Each node's log source, by node name (see `logs.rs`).
    pub(super) node_logs: std::sync::RwLock<std::collections::HashMap<String, Arc<dyn super::logs::NodeLogs>>>,
    /// Held from choosing a Service's cluster IP and node ports to storing it, so two creates
    /// never get the same address.
    service_allocation: std::sync::Mutex<()>,
    /// The cluster's metrics (`/metrics`), which the server, scheduler and activator record in.
    metrics: Arc<ControlMetrics>,
    /// Events recorded for the background sink, while one runs (see `events`).
    events: crate::events::EventQueue,
    /// The service proxy of this process, once registered (see `service_proxy.rs`).
    pub(super) service_proxy: std::sync::OnceLock<Arc<dyn super::service_proxy::ServiceProxy>>,
}

impl Api {
    /// The API over `store`, with metrics of its own.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Self::with_metrics(store, ControlMetrics::new())
    }

    /// The API over `store`, recording in `metrics`: its writes to the store are counted
    /// there (the API's store is `store` wrapped to count them).
    pub fn with_metrics(store: Arc<dyn Store>, metrics: Arc<ControlMetrics>) -> Arc<Self> {
        Arc::new(Api {
            store: metrics.instrument_store(store),
            node_logs: Default::default(),
            service_allocation: std::sync::Mutex::new(()),
            metrics,
            events: Default::default(),
            service_proxy: Default::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Where recorded events wait for the background sink.
    pub fn events(&self) -> &crate::events::EventQueue {
        &self.events
    }

    /// The cluster's metrics.
    pub fn metrics(&self) -> &Arc<ControlMetrics> {
        &self.metrics
    }

    /// Runs a synchronous verb on tokio's blocking pool, so an fsync never stalls the async
    /// workers.
    pub async fn call<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Api) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let api = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&api))
            .await
            .map_err(|e| ApiError::Internal(format!("request task failed: {e}")))?
    }

    /// Creates what every cluster has, if missing: the system namespaces and the two system
    /// PriorityClasses.
    pub fn bootstrap(&self) -> Result<(), ApiError> {
        let namespaces = resources::find("", "v1", "namespaces").expect("namespaces are served");
        let classes = resources::find("scheduling.k8s.io", "v1", "priorityclasses").expect("served");
        let mut objects: Vec<(&ResourceInfo, Value)> = ["default", "kube-system", "kube-public", "kube-node-lease"]
            .into_iter()
            .map(|name| {
                (
                    namespaces,
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
                )
            })
            .collect();
        for (name, value) in [
            ("system-cluster-critical", 2_000_000_000),
            ("system-node-critical", 2_000_001_000),
        ] {
            objects.push((
                classes,
                json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                    "value": value, "description": "Used for system critical pods that must not be moved from their current node."}),
            ));
        }
        for (info, object) in objects {
            match self.create(info, None, object, &WriteOptions::default()) {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn key(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> String {
        object_key(info.group, info.plural, ns.filter(|_| info.namespaced), name)
    }

    fn read(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<(Value, u64), ApiError> {
        let key = self.key(info, ns, name);
        match self.store.get(&key) {
            Ok(Some((bytes, rev))) => Ok((decode_stored(&key, &bytes, rev)?, rev)),
            Ok(None) => Err(ApiError::not_found(info, name)),
            Err(e) => Err(ApiError::from_store(info, name, e)),
        }
    }

    /// Stores `object` over the version read at `expected_rev` (objects are stored without
    /// their resourceVersion) and gives it the new one.
    fn write_back(
        &self,
        info: &ResourceInfo,
        key: &str,
        name: &str,
        object: &mut Value,
        expected_rev: u64,
    ) -> Result<u64, ApiError> {
        meta_mut(object)?.remove("resourceVersion");
        let rev = self
            .store
            .update(key, encode(object)?, Some(expected_rev))
            .map_err(|e| ApiError::from_store(info, name, e))?;
        set_resource_version(object, rev);
        Ok(rev)
    }

    /// GET of one object.
    pub fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.read(info, ns, name).map(|(v, _)| v)
    }

    /// The objects of a collection that match, and the revision the list was read at.
    pub fn list_items(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let prefix = collection_prefix(info.group, info.plural, ns.filter(|_| info.namespaced));
        let (entries, rev) = self
            .store
            .list(&prefix)
            .map_err(|e| ApiError::from_store(info, "", e))?;
        let mut items = Vec::with_capacity(entries.len());
        for (key, bytes, obj_rev) in entries {
            let object = decode_stored(&key, &bytes, obj_rev)?;
            if opts.matches(&object) {
                items.push(object);
            }
        }
        Ok((items, rev))
    }

    /// LIST: a `{Kind}List` of the matching objects.
    pub fn list(&self, info: &ResourceInfo, ns: Option<&str>, opts: &ListOptions) -> Result<Value, ApiError> {
        let (items, rev) = self.list_items(info, ns, opts)?;
        Ok(list_body(info, items, rev))
    }

    /// POST: creates an object, naming it from `generateName` if needed.
    pub fn create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        mut object: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type(info, &mut object)?;
        set_namespace(info, ns, &mut object)?;
        let meta = meta_mut(&mut object)?;
        let generate = meta.get("generateName").and_then(Value::as_str).map(str::to_owned);
        if meta.get("name").and_then(Value::as_str).is_none_or(str::is_empty)
            && let Some(prefix) = generate.filter(|p| !p.is_empty())
        {
            meta.insert("name".into(), Value::from(format!("{prefix}{}", random_suffix())));
        }
        let decoded = strategy::admit_checking(
            info,
            &object,
            Write::Create,
            opts.field_validation != FieldValidation::Ignore,
        )?;
        let warnings = unknown_field_warnings(opts.field_validation, decoded.unknown_fields)?;
        let mut object = decoded.object;
        let name = name_of(&object).to_owned();
        let namespace = namespace_of(&object).map(str::to_owned);
        if info.namespaced {
            let ns = namespace.as_deref().unwrap_or_default();
            self.check_namespace_open(info, &name, ns)?;
            self.admit_limit_ranges(info, ns, &mut object)?;
            self.admit_priority(info, &mut object)?;
            if info.kind == "ResourceQuota" {
                object["status"] = self.quota_status(&object)?;
            }
            if !opts.dry_run {
                self.charge_quotas(info, ns, &object, None)?;
            }
        }
        let meta = meta_mut(&mut object)?;
        meta.insert("uid".into(), Value::from(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), timestamp(now()));
        if tracks_generation(info) {
            meta.insert("generation".into(), Value::from(1));
        } else {
            meta.remove("generation");
        }
        for transient in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(transient);
        }
        let _allocation = (info.kind == "Service").then(|| {
            self.service_allocation
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        if info.kind == "Service" {
            self.allocate_service(info, &mut object)?;
        }
        if opts.dry_run {
            return Ok(Written { object, warnings });
        }
        let key = self.key(info, namespace.as_deref(), &name);
        let rev = self
            .store
            .create(&key, encode(&object)?)
            .map_err(|e| ApiError::from_store(info, &name, e))?;
        set_resource_version(&mut object, rev);
        Ok(Written { object, warnings })
    }

    /// Refuses new objects in a namespace that does not exist or is being deleted. The
    /// refusal names the object being created, as the NamespaceLifecycle plugin's does.
    fn check_namespace_open(&self, info: &ResourceInfo, name: &str, ns: &str) -> Result<(), ApiError> {
        let namespaces = resources::find("", "v1", "namespaces").expect("namespaces are served");
        let (namespace, _) = self.read(namespaces, None, ns)?;
        if namespace["metadata"].get("deletionTimestamp").is_some() {
            return Err(ApiError::Forbidden {
                resource: info.qualified(),
                name: name.into(),
                detail: format!("unable to create new content in namespace {ns} because it is being terminated"),
            });
        }
        Ok(())
    }

    /// PUT of the object (`subresource` None) or of its `/status`.
    pub fn update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut object: Value,
        status_only: bool,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type(info, &mut object)?;
        set_namespace(info, ns, &mut object)?;
        check_name(&object, name)?;
        let expected = match object["metadata"].get("resourceVersion").and_then(Value::as_str) {
            Some(rv) if !rv.is_empty() => Some(parse_rv(rv)?),
            _ => None,
        };
        let (old, old_rev) = self.read(info, ns, name)?;
        if expected.is_some_and(|rv| rv != old_rev) {
            return Err(ApiError::conflict(info, name));
        }
        self.replace(info, ns, name, object, &old, old_rev, status_only, opts)
    }

    /// One read-modify-write as a controller makes it: reads the object once, lets `change`
    /// return its new value (`None`: nothing to change), and writes that through the update
    /// verb's admission over the version read (a 409 if another write came between). The
    /// same checks as a PUT, without reading the object a second time.
    pub fn modify(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        status_only: bool,
        change: impl FnOnce(&Value) -> Result<Option<Value>, ApiError>,
    ) -> Result<Option<Written>, ApiError> {
        let (old, old_rev) = self.read(info, ns, name)?;
        let Some(mut object) = change(&old)? else {
            return Ok(None);
        };
        check_type(info, &mut object)?;
        set_namespace(info, ns, &mut object)?;
        check_name(&object, name)?;
        self.replace(
            info,
            ns,
            name,
            object,
            &old,
            old_rev,
            status_only,
            &WriteOptions::trusted(),
        )
        .map(Some)
    }

    /// Admits `object` as the new value of `old` (read at `old_rev`) and writes it if `old` is
    /// still current. The shared tail of update and patch.
    #[expect(
        clippy::too_many_arguments,
        reason = "the verbs' shared tail takes each of their inputs"
    )]
    fn replace(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut object: Value,
        old: &Value,
        old_rev: u64,
        status_only: bool,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        carry_over(info, &mut object, old, status_only);
        if info.kind == "Service" && !status_only {
            super::services::keep_addresses(&mut object, old);
        }
        let write = if status_only {
            Write::Status { old }
        } else {
            Write::Update { old }
        };
        let decoded = strategy::admit_checking(info, &object, write, opts.field_validation != FieldValidation::Ignore)?;
        let warnings = unknown_field_warnings(opts.field_validation, decoded.unknown_fields)?;
        let mut object = decoded.object;
        if info.kind == "ResourceQuota" && !status_only {
            object["status"] = self.quota_status(&object)?;
        }
        if info.namespaced && !status_only && !opts.dry_run {
            self.charge_quotas(info, ns.unwrap_or_default(), &object, Some(old))?;
        }
        if tracks_generation(info) && !status_only && spec_changed(&object, old) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            meta_mut(&mut object)?.insert("generation".into(), Value::from(generation));
        }
        // A write that changes nothing is not made (as the apiserver's GuaranteedUpdate), so
        // resourceVersion and watchers see only real changes.
        if same_but_version(&object, old) {
            return Ok(Written {
                object: old.clone(),
                warnings,
            });
        }
        if opts.dry_run {
            return Ok(Written { object, warnings });
        }
        let key = self.key(info, ns, name);
        // Removing the last finalizer of an object being deleted completes the deletion.
        if deletion_complete(info, &object) {
            let (_, rev) = self
                .store
                .delete(&key, Some(old_rev))
                .map_err(|e| ApiError::from_store(info, name, e))?;
            set_resource_version(&mut object, rev);
            return Ok(Written { object, warnings });
        }
        self.write_back(info, &key, name, &mut object, old_rev)?;
        Ok(Written { object, warnings })
    }

    /// PATCH of the object or its `/status`: reads, applies, and writes if nothing changed in
    /// between, retrying a few times when something did (as the apiserver does).
    #[expect(clippy::too_many_arguments, reason = "a PATCH request has this many inputs")]
    pub fn patch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        status_only: bool,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut attempt = 0;
        loop {
            let (old, old_rev) = self.read(info, ns, name)?;
            let patched = patch::apply_patch(info.kind, patch_type, &old, body).map_err(|e| match e.status_code() {
                415 => ApiError::UnsupportedMediaType(e.to_string()),
                422 => ApiError::Unprocessable(e.to_string()),
                _ => ApiError::BadRequest(e.to_string()),
            })?;
            // A patch that sets resourceVersion makes it a precondition: the patched object
            // then carries another version than the one read. Without one, a concurrent write
            // is not the client's concern: read again and re-apply.
            let patched_rv = patched["metadata"].get("resourceVersion").and_then(Value::as_str);
            let precondition = match patched_rv {
                Some(rv) if !rv.is_empty() => parse_rv(rv)? != old_rev,
                _ => false,
            };
            if precondition {
                return Err(ApiError::conflict(info, name));
            }
            let mut patched = patched;
            check_type(info, &mut patched)?;
            match self.replace(info, ns, name, patched, &old, old_rev, status_only, opts) {
                Err(ApiError::Conflict { .. }) if attempt < PATCH_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    /// DELETE: immediate, or pending while a pod shuts down gracefully or finalizers run.
    /// Without preconditions, a write that lands between the read and the delete is not the
    /// client's concern: read again and retry.
    pub fn delete(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        // A uid precondition is checked again on each attempt; a resourceVersion one cannot hold after a conflict.
        let preconditions = opts.precondition_resource_version.is_some();
        let mut attempt = 0;
        loop {
            match self.delete_once(info, ns, name, opts) {
                Err(ApiError::Conflict { .. }) if !preconditions && attempt < PATCH_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }

    fn delete_once(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let (mut object, rev) = self.read(info, ns, name)?;
        if let Some(uid) = &opts.precondition_uid
            && object["metadata"]["uid"].as_str() != Some(uid)
        {
            return Err(ApiError::Conflict {
                resource: info.qualified(),
                name: name.into(),
                detail: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    object["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            });
        }
        if let Some(rv) = &opts.precondition_resource_version
            && parse_rv(rv)? != rev
        {
            return Err(ApiError::conflict(info, name));
        }
        let key = self.key(info, ns, name);
        let meta = meta_mut(&mut object)?;
        let mut finalizers: Vec<Value> = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let propagation = match opts.propagation_policy.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            Some("Background") | None => None,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "propagationPolicy must be one of Orphan, Background, Foreground; got {other:?}"
                )));
            }
        };
        if let Some(f) = propagation
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(Value::from(f));
        }
        let grace = graceful_period(info, &object, opts.grace_period_seconds);
        let already_deleting = object["metadata"].get("deletionTimestamp").is_some();
        // A namespace always goes through Terminating: the namespace controller empties it
        // and then removes it (its `spec.finalizers`, which are not metadata's).
        if finalizers.is_empty() && grace == 0 && info.kind != "Namespace" {
            if opts.dry_run {
                return Ok(Deleted {
                    body: object,
                    gone: true,
                });
            }
            let (_, del_rev) = self
                .store
                .delete(&key, Some(rev))
                .map_err(|e| ApiError::from_store(info, name, e))?;
            set_resource_version(&mut object, del_rev);
            let body = if returns_deleted_object(info) {
                object
            } else {
                success_status(info, name, object["metadata"]["uid"].as_str())
            };
            return Ok(Deleted { body, gone: true });
        }
        // Pending: mark the deletion (a later, shorter grace period may shorten it).
        let meta = meta_mut(&mut object)?;
        let current_grace = meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
        let mut changed = meta.get("finalizers").and_then(Value::as_array).map_or(0, Vec::len) != finalizers.len();
        if !already_deleting {
            let deadline = now()
                .checked_add(SignedDuration::from_secs(grace.max(0)))
                .unwrap_or_else(|_| now());
            meta.insert("deletionTimestamp".into(), timestamp(deadline));
            meta.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
            // Controllers of an object being deleted change what they do, so its generation
            // moves on (apimachinery's BeforeDelete and store.go, for objects that have one).
            if let Some(generation) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                meta.insert("generation".into(), Value::from(generation + 1));
            }
            changed = true;
        } else if let Some(current) = current_grace.filter(|g| grace < *g) {
            // Shortened from the first request's time, not from now, as BeforeDelete does.
            let marked: Option<Timestamp> = meta
                .get("deletionTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok());
            let deadline = marked
                .and_then(|t| t.checked_add(SignedDuration::from_secs(grace - current)).ok())
                .unwrap_or_else(now);
            meta.insert("deletionTimestamp".into(), timestamp(deadline));
            meta.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
            changed = true;
        }
        if finalizers.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), Value::Array(finalizers));
        }
        if info.kind == "Namespace" {
            object["status"]["phase"] = Value::from("Terminating");
        }
        // A deletion already pending that this request does not shorten is left as it is.
        if opts.dry_run || !changed {
            return Ok(Deleted {
                body: object,
                gone: false,
            });
        }
        self.write_back(info, &key, name, &mut object, rev)?;
        Ok(Deleted {
            body: object,
            gone: false,
        })
    }

    /// DELETE of a collection: deletes each matching object; answers the list of them.
    pub fn delete_collection(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let (items, _) = self.list_items(info, ns, list)?;
        let mut deleted = Vec::new();
        for item in items {
            let name = name_of(&item).to_owned();
            match self.delete(info, namespace_of(&item), &name, opts) {
                Ok(d) => deleted.push(d.body),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let rev = self.store.revision().map_err(|e| ApiError::from_store(info, "", e))?;
        Ok(list_body(info, deleted, rev))
    }

    /// Removes a namespace being deleted once its contents are gone: the namespace
    /// controller's last step (the `kubernetes` finalizer's, in Kubernetes).
    pub fn finalize_namespace(&self, name: &str) -> Result<(), ApiError> {
        let info = resources::find("", "v1", "namespaces").expect("namespaces are served");
        let (ns, rev) = self.read(info, None, name)?;
        if ns["metadata"].get("deletionTimestamp").is_none() {
            return Err(ApiError::Conflict {
                resource: "namespaces".into(),
                name: name.into(),
                detail: "the namespace is not being deleted".into(),
            });
        }
        self.store
            .delete(&self.key(info, None, name), Some(rev))
            .map(|_| ())
            .map_err(|e| ApiError::from_store(info, name, e))
    }

    /// POST `pods/{name}/binding`: sets the pod's node, once. A refusal is a Conflict on
    /// `pods/binding`, the resource kube-apiserver's binding storage names in it.
    pub fn bind(&self, ns: &str, name: &str, binding: &Value) -> Result<Value, ApiError> {
        let pods = resources::find("", "v1", "pods").expect("pods are served");
        let node = binding["target"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::BadRequest("binding target.name is required".into()))?
            .to_owned();
        let (mut pod, rev) = self.read(pods, Some(ns), name)?;
        if let Some(current) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(ApiError::Conflict {
                resource: "pods/binding".into(),
                name: name.into(),
                detail: format!("pod {name} is already assigned to node \"{current}\""),
            });
        }
        if pod["metadata"].get("deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                resource: "pods/binding".into(),
                name: name.into(),
                detail: format!("pod {name} is being deleted, cannot be assigned to a host"),
            });
        }
        pod["spec"]["nodeName"] = Value::from(node);
        let conditions = pod["status"]
            .as_object_mut()
            .ok_or_else(|| ApiError::Internal("pod without status".into()))?
            .entry("conditions")
            .or_insert_with(|| json!([]));
        if let Value::Array(list) = conditions {
            list.retain(|c| c["type"] != "PodScheduled");
            list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": timestamp(now())}));
        }
        let key = self.key(pods, Some(ns), name);
        self.write_back(pods, &key, name, &mut pod, rev)?;
        Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
    }

    /// GET `/scale` of a Deployment or ReplicaSet: an `autoscaling/v1` Scale.
    pub fn get_scale(&self, info: &ResourceInfo, ns: &str, name: &str) -> Result<Value, ApiError> {
        let object = self.get(info, Some(ns), name)?;
        Ok(scale_of(&object))
    }

    /// PUT or PATCH `/scale`: sets `spec.replicas` from the Scale's.
    pub fn set_scale(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        replicas: i64,
        expected_rv: Option<&str>,
    ) -> Result<Value, ApiError> {
        if replicas < 0 {
            return Err(ApiError::Invalid {
                kind: "Scale.autoscaling".into(),
                name: name.into(),
                causes: vec![capstan_core::validate::FieldError::invalid_number(
                    "spec.replicas",
                    replicas,
                    "must be greater than or equal to 0",
                )],
            });
        }
        let expected = expected_rv.filter(|rv| !rv.is_empty()).map(parse_rv).transpose()?;
        let mut attempt = 0;
        loop {
            let (old, rev) = self.read(info, Some(ns), name)?;
            if expected.is_some_and(|rv| rv != rev) {
                return Err(ApiError::conflict(info, name));
            }
            let mut object = old.clone();
            object["spec"]["replicas"] = Value::from(replicas);
            // Without a resourceVersion the client did not ask for a precondition: a controller's
            // status write in between is retried over, as for a patch.
            match self.replace(info, Some(ns), name, object, &old, rev, false, &WriteOptions::default()) {
                Ok(written) => return Ok(scale_of(&written.object)),
                Err(ApiError::Conflict { .. }) if expected.is_none() && attempt < PATCH_RETRIES => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A `{Kind}List` body.
pub fn list_body(info: &ResourceInfo, items: Vec<Value>, rev: u64) -> Value {
    json!({
        "kind": info.list_kind(),
        "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": rev.to_string()},
        "items": items,
    })
}

/// The `autoscaling/v1` Scale of a workload.
fn scale_of(object: &Value) -> Value {
    let selector = object["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
            "creationTimestamp": object["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// Pods are deleted gracefully once bound to a node (the node stops them and then removes
/// them with a zero grace period); everything else, and a pod no node runs, goes at once.
fn graceful_period(info: &ResourceInfo, object: &Value, requested: Option<i64>) -> i64 {
    if info.kind != "Pod" {
        return 0;
    }
    let bound = object["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let terminal = matches!(object["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    if !bound || terminal {
        return 0;
    }
    requested
        .or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(capstan_core::defaults::DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS)
        .max(0)
}

/// Whether an update leaves an object that is being deleted with nothing left to wait for.
fn deletion_complete(info: &ResourceInfo, object: &Value) -> bool {
    let meta = &object["metadata"];
    meta.get("deletionTimestamp").is_some()
        && meta["finalizers"].as_array().is_none_or(Vec::is_empty)
        && (info.kind != "Pod" || meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0)
        && info.kind != "Namespace"
}

/// Kinds whose DELETE answers the deleted object rather than a `Status`.
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    matches!(info.kind, "Pod" | "Namespace" | "Service" | "Node")
}

/// Fields an update may not set: metadata the server owns, and `status` (through the main
/// resource) or everything but `status` (through `/status`).
fn carry_over(info: &ResourceInfo, object: &mut Value, old: &Value, status_only: bool) {
    let (Value::Object(new), Value::Object(old_map)) = (&mut *object, old) else {
        return;
    };
    if status_only {
        // Only status changes; metadata and spec stay as stored.
        let status = new.remove("status");
        let mut merged = old_map.clone();
        match status {
            Some(status) => merged.insert("status".into(), status),
            None => merged.remove("status"),
        };
        *new = merged;
        return;
    }
    if info.has_status() {
        match old_map.get("status") {
            Some(status) => new.insert("status".into(), status.clone()),
            None => new.remove("status"),
        };
    }
    let old_meta = &old_map["metadata"];
    if let Some(Value::Object(meta)) = new.get_mut("metadata") {
        for owned in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old_meta.get(owned) {
                Some(v) => meta.insert(owned.into(), v.clone()),
                None => meta.remove(owned),
            };
        }
    }
}

/// Whether the kind has a `metadata.generation`: those whose strategies set it (workloads,
/// and pods since Kubernetes 1.33). A ConfigMap or a Namespace has none.
fn tracks_generation(info: &ResourceInfo) -> bool {
    matches!(info.kind, "Pod" | "Deployment" | "ReplicaSet")
}

/// Whether two versions of an object are equal apart from their resourceVersion.
fn same_but_version(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(Value::Object(meta)) = v.get_mut("metadata") {
            meta.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

/// Whether anything outside `metadata` and `status` changed: what bumps `generation`.
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(new) != strip(old)
}

fn unknown_field_warnings(mode: FieldValidation, unknown: Vec<String>) -> Result<Vec<String>, ApiError> {
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        _ if unknown.is_empty() => Ok(Vec::new()),
        FieldValidation::Warn => Ok(unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect()),
        FieldValidation::Strict => {
            let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            Err(ApiError::BadRequest(format!(
                "strict decoding error: {}",
                list.join(", ")
            )))
        }
    }
}

/// Checks `apiVersion` and `kind` against the resource, filling them when absent.
fn check_type(info: &ResourceInfo, object: &mut Value) -> Result<(), ApiError> {
    let Value::Object(map) = object else {
        return Err(ApiError::BadRequest("the request body is not a JSON object".into()));
    };
    let expected = info.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != expected => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        _ => map.insert("apiVersion".into(), Value::from(expected)),
    };
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != info.kind => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => map.insert("kind".into(), Value::from(info.kind)),
    };
    Ok(())
}

/// Fills or checks the object's namespace against the request's.
fn set_namespace(info: &ResourceInfo, ns: Option<&str>, object: &mut Value) -> Result<(), ApiError> {
    let meta = meta_mut(object)?;
    if !info.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let Some(ns) = ns else {
        return Err(ApiError::MethodNotAllowed);
    };
    match meta.get("namespace").and_then(Value::as_str) {
        Some(body_ns) if !body_ns.is_empty() && body_ns != ns => Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request".into(),
        )),
        _ => {
            meta.insert("namespace".into(), Value::from(ns));
            Ok(())
        }
    }
}

fn meta_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let Value::Object(map) = object else {
        return Err(ApiError::BadRequest("the request body is not a JSON object".into()));
    };
    match map.entry("metadata").or_insert_with(|| json!({})) {
        Value::Object(meta) => Ok(meta),
        _ => Err(ApiError::BadRequest("metadata must be an object".into())),
    }
}

pub fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace_of(object: &Value) -> Option<&str> {
    object["metadata"]["namespace"].as_str()
}

fn parse_rv(rv: &str) -> Result<u64, ApiError> {
    rv.parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}: must be a number")))
}

pub fn set_resource_version(object: &mut Value, rev: u64) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.insert("resourceVersion".into(), Value::from(rev.to_string()));
    }
}

/// A stored object, with its resourceVersion filled in.
pub fn decode_stored(key: &str, bytes: &[u8], rev: u64) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::from_store_corrupt(StoreError::Corrupt {
            key: key.into(),
            reason: e.to_string(),
        })
    })?;
    set_resource_version(&mut object, rev);
    Ok(object)
}

/// Refuses a body that names another object than the URL does.
fn check_name(object: &Value, name: &str) -> Result<(), ApiError> {
    if name_of(object) != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            name_of(object)
        )));
    }
    Ok(())
}

fn encode(object: &Value) -> Result<Bytes, ApiError> {
    serde_json::to_vec(object)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Five characters of [`NAME_ALPHABET`], from a fresh UUID's random bits.
fn random_suffix() -> String {
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..5)
        .map(|i| NAME_ALPHABET[((bits >> (i * 8)) % NAME_ALPHABET.len() as u128) as usize] as char)
        .collect()
}

/// The current time, to the second, as Kubernetes records timestamps.
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Timestamp::from_second(secs as i64).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A timestamp as metav1.Time serialises it.
pub fn timestamp(t: Timestamp) -> Value {
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

impl ApiError {
    fn from_store_corrupt(err: StoreError) -> Self {
        ApiError::Internal(err.to_string())
    }
}
