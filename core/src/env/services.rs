//! The environment variables a pod gets for the Services of its namespace
//! (`enableServiceLinks`, on by default): `{NAME}_SERVICE_HOST`/`_PORT` and the Docker-link
//! style `{NAME}_PORT_{port}_{PROTO}...`, as the kubelet's `envvars.FromServices` writes them.

use k8s_openapi::api::core::v1::Service;

/// `my-svc` → `MY_SVC`.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The variables for `services` (those with a cluster IP; headless and ExternalName ones
/// have no address to give), in the order the kubelet adds them.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for svc in services {
        let Some(spec) = svc.spec.as_ref() else { continue };
        let Some(ip) = spec.cluster_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "None") else {
            continue;
        };
        let ports = spec.ports.as_deref().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let name = env_name(svc.metadata.name.as_deref().unwrap_or_default());
        vars.push((format!("{name}_SERVICE_HOST"), ip.to_owned()));
        vars.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for port in ports {
            if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((
                    format!("{name}_SERVICE_PORT_{}", env_name(port_name)),
                    port.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.as_deref().unwrap_or("TCP").to_owned();
        vars.push((
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", proto(first).to_ascii_lowercase(), first.port),
        ));
        for port in ports {
            let protocol = proto(port);
            let prefix = format!("{name}_PORT_{}_{}", port.port, protocol.to_ascii_uppercase());
            vars.push((
                prefix.clone(),
                format!("{}://{ip}:{}", protocol.to_ascii_lowercase(), port.port),
            ));
            vars.push((format!("{prefix}_PROTO"), protocol.to_ascii_lowercase()));
            vars.push((format!("{prefix}_PORT"), port.port.to_string()));
            vars.push((format!("{prefix}_ADDR"), ip.to_owned()));
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_follow_the_kubelet() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "log-ambassador"},
            "spec": {"clusterIP": "10.96.0.4", "ports": [{"name": "http", "port": 9009, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}
        }))
        .unwrap();
        let vars = service_env(&[svc, headless]);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("LOG_AMBASSADOR_SERVICE_HOST"), Some("10.96.0.4"));
        assert_eq!(get("LOG_AMBASSADOR_SERVICE_PORT"), Some("9009"));
        assert_eq!(get("LOG_AMBASSADOR_SERVICE_PORT_HTTP"), Some("9009"));
        assert_eq!(get("LOG_AMBASSADOR_PORT"), Some("tcp://10.96.0.4:9009"));
        assert_eq!(get("LOG_AMBASSADOR_PORT_53_UDP"), Some("udp://10.96.0.4:53"));
        assert_eq!(get("LOG_AMBASSADOR_PORT_53_UDP_ADDR"), Some("10.96.0.4"));
        assert!(get("DB_SERVICE_HOST").is_none(), "headless services give no address");
    }
}
