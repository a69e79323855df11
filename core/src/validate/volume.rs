//! Pod volumes: unique DNS-1123 names, exactly one source each, and sane sources.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Volume, VolumeProjection};

use super::container::check_descending_path;
use super::env::{validate_field_ref, validate_resource_field_ref};
use super::{FieldError, check_mode, invalid_each};
use crate::downward::VOLUME_FIELD_PATHS;
use crate::names;
use crate::quantity;

/// Validates the volumes and returns the names of the valid ones (a mount of an invalid
/// volume is then reported as not found, as the apiserver does).
pub(super) fn validate_volumes(volumes: &[Volume], path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut valid = HashSet::new();
    let mut seen = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut own = Vec::new();
        validate_source(volume, &p, &mut own);
        let name_path = format!("{p}.name");
        if volume.name.is_empty() {
            own.push(FieldError::required(&name_path, ""));
        } else {
            own.extend(invalid_each(
                &name_path,
                &volume.name,
                names::dns1123_label(&volume.name),
            ));
        }
        if !seen.insert(volume.name.as_str()) {
            own.push(FieldError::duplicate(&name_path, &volume.name));
        }
        if own.is_empty() {
            valid.insert(volume.name.clone());
        }
        errs.extend(own);
    }
    valid
}

/// The volume's source fields that are set, in the apiserver's order, by JSON name.
fn sources(v: &Volume) -> Vec<&'static str> {
    let all = [
        ("emptyDir", v.empty_dir.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("configMap", v.config_map.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("storageos", v.storageos.is_some()),
        ("projected", v.projected.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ];
    all.into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect()
}

fn validate_source(v: &Volume, path: &str, errs: &mut Vec<FieldError>) {
    let set = sources(v);
    if set.is_empty() {
        errs.push(FieldError::required(path, "must specify a volume type"));
        return;
    }
    for extra in &set[1..] {
        errs.push(FieldError::forbidden(
            format!("{path}.{extra}"),
            "may not specify more than 1 volume type",
        ));
    }
    let p = format!("{path}.{}", set[0]);
    match set[0] {
        "emptyDir" => {
            let limit = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref());
            if let Some(limit) = limit
                && !quantity::parse(&limit.0).is_ok_and(|q| q.nanos() >= 0)
            {
                errs.push(FieldError::forbidden(
                    format!("{p}.sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            let Some(h) = &v.host_path else { return };
            if h.path.is_empty() {
                errs.push(FieldError::required(format!("{p}.path"), ""));
            } else if h.path.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(
                    format!("{p}.path"),
                    &h.path,
                    "must not contain '..'",
                ));
            }
            let types = [
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            if let Some(t) = h.type_.as_deref().filter(|t| !types.contains(t)) {
                errs.push(FieldError::not_supported(format!("{p}.type"), t, &types));
            }
        }
        "secret" => {
            let Some(s) = &v.secret else { return };
            if s.secret_name.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!("{p}.secretName"), ""));
            }
            check_mode(&format!("{p}.defaultMode"), s.default_mode, errs);
            validate_items(s.items.as_deref(), &format!("{p}.items"), errs);
        }
        "configMap" => {
            let Some(c) = &v.config_map else { return };
            if c.name.is_empty() {
                errs.push(FieldError::required(format!("{p}.name"), ""));
            }
            check_mode(&format!("{p}.defaultMode"), c.default_mode, errs);
            validate_items(c.items.as_deref(), &format!("{p}.items"), errs);
        }
        "downwardAPI" => {
            let Some(d) = &v.downward_api else { return };
            check_mode(&format!("{p}.defaultMode"), d.default_mode, errs);
            validate_downward_items(d.items.as_deref().unwrap_or(&[]), &p, errs);
        }
        "projected" => {
            let Some(pr) = &v.projected else { return };
            check_mode(&format!("{p}.defaultMode"), pr.default_mode, errs);
            validate_projections(pr.sources.as_deref().unwrap_or(&[]), &format!("{p}.sources"), errs);
        }
        "persistentVolumeClaim"
            if v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name.is_empty()) =>
        {
            errs.push(FieldError::required(format!("{p}.claimName"), ""));
        }
        _ => {}
    }
}

/// A file path inside a data volume (`ValidateLocalNonReservedPath`).
fn check_file_path(path: &str, value: &str, errs: &mut Vec<FieldError>) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    check_descending_path(path, value, errs);
    if value.starts_with("..") && !value.starts_with("../") {
        errs.push(FieldError::invalid(path, value, "must not start with '..'"));
    }
}

fn validate_items(items: Option<&[KeyToPath]>, path: &str, errs: &mut Vec<FieldError>) {
    for (i, item) in items.unwrap_or(&[]).iter().enumerate() {
        let p = format!("{path}[{i}]");
        if item.key.is_empty() {
            errs.push(FieldError::required(format!("{p}.key"), ""));
        }
        check_file_path(&format!("{p}.path"), &item.path, errs);
        check_mode(&format!("{p}.mode"), item.mode, errs);
    }
}

fn validate_downward_items(items: &[DownwardAPIVolumeFile], path: &str, errs: &mut Vec<FieldError>) {
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}.items[{i}]");
        check_file_path(&format!("{p}.path"), &item.path, errs);
        check_mode(&format!("{p}.mode"), item.mode, errs);
        match (&item.field_ref, &item.resource_field_ref) {
            (Some(_), Some(_)) => {
                errs.push(FieldError::invalid(
                    &p,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
            (Some(r), None) => validate_field_ref(r, VOLUME_FIELD_PATHS, &format!("{p}.fieldRef"), errs),
            (None, Some(r)) => validate_resource_field_ref(r, true, &format!("{p}.resourceFieldRef"), errs),
            (None, None) => errs.push(FieldError::required(
                &p,
                "one of fieldRef and resourceFieldRef is required",
            )),
        }
    }
}

fn validate_projections(sources: &[VolumeProjection], path: &str, errs: &mut Vec<FieldError>) {
    let mut paths = HashSet::new();
    let mut claim = |p: String, file: &str, errs: &mut Vec<FieldError>| {
        if !paths.insert(file.to_string()) {
            errs.push(FieldError::invalid(p, file, "conflicting duplicate paths"));
        }
    };
    for (i, s) in sources.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let set = [
            ("secret", s.secret.is_some()),
            ("downwardAPI", s.downward_api.is_some()),
            ("configMap", s.config_map.is_some()),
            ("serviceAccountToken", s.service_account_token.is_some()),
            ("clusterTrustBundle", s.cluster_trust_bundle.is_some()),
            ("podCertificate", s.pod_certificate.is_some()),
        ];
        let set: Vec<&str> = set.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect();
        if set.is_empty() {
            errs.push(FieldError::required(&p, "must specify exactly 1 volume type"));
        }
        for extra in set.iter().skip(1) {
            errs.push(FieldError::forbidden(
                format!("{p}.{extra}"),
                "may not specify more than 1 volume type per source",
            ));
        }
        let keyed = [
            ("secret", s.secret.as_ref().map(|x| (&x.name, &x.items))),
            ("configMap", s.config_map.as_ref().map(|x| (&x.name, &x.items))),
        ];
        for (field, source) in keyed {
            let Some((name, items)) = source else {
                continue;
            };
            if name.is_empty() {
                errs.push(FieldError::required(format!("{p}.{field}.name"), ""));
            }
            validate_items(items.as_deref(), &format!("{p}.{field}.items"), errs);
            for (j, item) in items.iter().flatten().enumerate() {
                claim(format!("{p}.{field}.items[{j}].path"), &item.path, errs);
            }
        }
        if let Some(d) = &s.downward_api {
            let items = d.items.as_deref().unwrap_or(&[]);
            validate_downward_items(items, &format!("{p}.downwardAPI"), errs);
            for (j, item) in items.iter().enumerate() {
                claim(format!("{p}.downwardAPI.items[{j}].path"), &item.path, errs);
            }
        }
        if let Some(t) = &s.service_account_token {
            check_file_path(&format!("{p}.serviceAccountToken.path"), &t.path, errs);
            claim(format!("{p}.serviceAccountToken.path"), &t.path, errs);
            let expiration = format!("{p}.serviceAccountToken.expirationSeconds");
            match t.expiration_seconds {
                Some(e) if e < 600 => errs.push(FieldError::invalid_number(
                    expiration,
                    e,
                    "may not be less than 10 minutes",
                )),
                Some(e) if e > 1 << 32 => errs.push(FieldError::invalid_number(
                    expiration,
                    e,
                    "may not be more than 2^32 seconds",
                )),
                _ => {}
            }
        }
    }
}
