//! `wasi:sockets/ip-name-lookup` for a pod: IP literals, `localhost`, and the names
//! cluster DNS gives Services (`web`, `web.ns`, `web.ns.svc`,
//! `web.ns.svc.cluster.local`: the cluster IP, or a headless Service's pod IPs) and
//! pods (`db-0.db.ns.svc.cluster.local`, `10-88-0-3.ns.pod.cluster.local`), as the
//! control plane's resolver answers them; every other name is `name-unresolvable`, as a
//! name that does not exist is.
//!
//! Why replace wasmtime-wasi's: its lookup asks the host resolver (when allowed at
//! all), and a pod must not learn or reach anything of the host's network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, SocketResult};

use super::NetView;
use super::bindings::ip_name_lookup;

/// The answers to one lookup, handed out one by one.
pub struct ResolveAddressStream(std::vec::IntoIter<IpAddr>);

/// What `name` resolves to inside a pod whose cluster DNS answers `cluster` (`None`:
/// no such name). A name with no address (a headless Service with no ready
/// endpoint) is unresolvable, as CoreDNS's empty answer is to a client.
pub fn resolve(name: &str, cluster: impl FnOnce(&str) -> Option<Vec<IpAddr>>) -> Result<Vec<IpAddr>, ErrorCode> {
    let name = name.trim_end_matches('.');
    if name.is_empty() {
        return Err(ErrorCode::InvalidArgument);
    }
    // `[::1]` is how URLs write an IPv6 literal; accept it as wasmtime-wasi does.
    let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    if name.eq_ignore_ascii_case("localhost") {
        return Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]);
    }
    match cluster(name) {
        Some(addrs) if !addrs.is_empty() => Ok(addrs),
        _ => Err(ErrorCode::NameUnresolvable),
    }
}

impl ip_name_lookup::Host for NetView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        self.table.get(&network)?;
        let addrs = resolve(&name, |n| self.net.lookup(n))?;
        Ok(self.table.push(ResolveAddressStream(addrs.into_iter()))?)
    }
}

impl ip_name_lookup::HostResolveAddressStream for NetView<'_> {
    fn resolve_next_address(&mut self, this: Resource<ResolveAddressStream>) -> SocketResult<Option<IpAddress>> {
        Ok(self.table.get_mut(&this)?.0.next().map(IpAddress::from))
    }

    fn subscribe(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, this)
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Answers are known when the stream is made: always ready.
#[wasmtime_wasi::async_trait]
impl Pollable for ResolveAddressStream {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_cluster(_: &str) -> Option<Vec<IpAddr>> {
        None
    }

    #[test]
    fn localhost_and_literals_resolve_and_nothing_else_does() {
        let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            resolve("localhost", no_cluster).unwrap(),
            vec![lo4, IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert_eq!(resolve("LOCALHOST.", no_cluster).unwrap()[0], lo4);
        assert_eq!(
            resolve("10.88.0.2", no_cluster).unwrap(),
            vec!["10.88.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolve("[::1]", no_cluster).unwrap(),
            vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert!(matches!(
            resolve("example.com", no_cluster),
            Err(ErrorCode::NameUnresolvable)
        ));
        assert!(matches!(resolve("", no_cluster), Err(ErrorCode::InvalidArgument)));
    }

    #[test]
    fn cluster_names_resolve_through_cluster_dns_and_empty_answers_do_not() {
        let web: IpAddr = "10.96.0.7".parse().unwrap();
        let pods: Vec<IpAddr> = vec!["10.88.0.3".parse().unwrap(), "10.88.0.4".parse().unwrap()];
        let dns = |name: &str| match name {
            "web" | "web.shop.svc.cluster.local" => Some(vec![web]),
            "db" => Some(pods.clone()),
            "idle" => Some(vec![]),
            _ => None,
        };
        assert_eq!(resolve("web", dns).unwrap(), vec![web]);
        assert_eq!(
            resolve("web.shop.svc.cluster.local.", dns).unwrap(),
            vec![web],
            "a trailing dot is the same name"
        );
        assert_eq!(resolve("db", dns).unwrap(), pods, "every address, in order");
        assert!(matches!(resolve("idle", dns), Err(ErrorCode::NameUnresolvable)));
        assert!(matches!(resolve("nope", dns), Err(ErrorCode::NameUnresolvable)));
        assert_eq!(
            resolve("localhost", |_| Some(vec![web])).unwrap()[0],
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "localhost is never a Service"
        );
    }
}
