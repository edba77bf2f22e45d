//! Redis URLs to fred [`Config`]s, with comma-separated host lists for cluster and
//! sentinel deployments.

use fred::types::config::Config;

use crate::Error;

/// Parses a store URL. See [`RedisStore::builder`](crate::RedisStore::builder) for the
/// accepted forms.
pub(crate) fn parse(url: &str) -> Result<Config, Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::url("expected `scheme://...`"))?;
    let scheme = scheme.to_ascii_lowercase();
    let (base, kind) = match scheme.strip_suffix("-cluster") {
        Some(base) => (base, Kind::Cluster),
        None => match scheme.strip_suffix("-sentinel") {
            Some(base) => (base, Kind::Sentinel),
            None => (scheme.as_str(), Kind::Standalone),
        },
    };
    let tls = match base {
        "redis" => false,
        "rediss" => true,
        _ => {
            return Err(Error::url(
                "unknown scheme: use redis, rediss, redis-cluster, rediss-cluster, \
                 redis-sentinel or rediss-sentinel",
            ))
        }
    };
    if tls && !cfg!(feature = "tls") {
        // fred would otherwise parse `rediss://` and silently connect without TLS.
        return Err(Error::url(
            "`rediss` URLs need TLS: enable the `tls` feature of sessio-redis",
        ));
    }
    let rewritten = rewrite(&scheme, rest, kind)?;
    let config = match kind {
        Kind::Standalone => Config::from_url_centralized(&rewritten),
        Kind::Cluster => Config::from_url_clustered(&rewritten),
        Kind::Sentinel => Config::from_url_sentinel(&rewritten),
    };
    config.map_err(|e| Error::Url {
        reason: "fred refused it".into(),
        source: Some(e),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standalone,
    Cluster,
    Sentinel,
}

/// Rewrites `h1:p1,h2:p2` into fred's `h1:p1?node=h2:p2`, and a sentinel path
/// `/service[/db]` into `/db?sentinelServiceName=service`.
fn rewrite(scheme: &str, rest: &str, kind: Kind) -> Result<String, Error> {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let mut hosts = hosts.split(',').map(str::trim).filter(|h| !h.is_empty());
    let first = hosts.next().ok_or_else(|| Error::url("no host given"))?;
    let others: Vec<&str> = hosts.collect();
    if kind == Kind::Standalone && !others.is_empty() {
        return Err(Error::url(
            "several hosts need `redis-cluster://` or `redis-sentinel://`",
        ));
    }
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, q),
        None => (tail, ""),
    };
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    params.extend(others.iter().map(|h| format!("node={h}")));
    let mut path = path.to_owned();
    if kind == Kind::Sentinel {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(service) = segments
            .first()
            .filter(|s| !s.chars().all(|c| c.is_ascii_digit()))
        {
            if segments.len() > 2 {
                return Err(Error::url(
                    "a sentinel path is `/service_name` or `/service_name/db`",
                ));
            }
            params.push(format!("sentinelServiceName={service}"));
            path = segments.get(1).map_or(String::new(), |db| format!("/{db}"));
        }
        if !params.iter().any(|p| p.starts_with("sentinelServiceName=")) {
            return Err(Error::url(
                "a sentinel URL names the service: `redis-sentinel://host:26379/mymaster`",
            ));
        }
    }
    let mut out = format!("{scheme}://{userinfo}{first}{path}");
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use fred::types::config::{Server, ServerConfig};

    use super::*;

    fn hosts(config: &Config) -> Vec<String> {
        let mut out: Vec<String> = config
            .server
            .hosts()
            .iter()
            .map(|s: &Server| format!("{}:{}", s.host, s.port))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn standalone_with_db_and_credentials() {
        let c = parse("redis://user:secret@127.0.0.1:6380/3").expect("parses");
        assert!(matches!(c.server, ServerConfig::Centralized { .. }));
        assert_eq!(c.database, Some(3));
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(hosts(&c), vec!["127.0.0.1:6380"]);
        let c = parse("redis://localhost").expect("parses");
        assert_eq!(hosts(&c), vec!["localhost:6379"]);
    }

    #[test]
    fn cluster_comma_list() {
        let c = parse("redis-cluster://:pw@10.0.0.1:7000,10.0.0.2:7001, 10.0.0.3:7002")
            .expect("parses");
        assert!(matches!(c.server, ServerConfig::Clustered { .. }));
        assert_eq!(
            hosts(&c),
            vec!["10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"]
        );
        assert_eq!(c.password.as_deref(), Some("pw"));
        // fred's own form still works.
        let c = parse("redis-cluster://10.0.0.1:7000?node=10.0.0.2:7001").expect("parses");
        assert_eq!(hosts(&c), vec!["10.0.0.1:7000", "10.0.0.2:7001"]);
    }

    #[test]
    fn sentinel_service_in_path_or_query() {
        let c = parse("redis-sentinel://s1:26379,s2:26380/mymaster/2").expect("parses");
        let ServerConfig::Sentinel { service_name, .. } = &c.server else {
            panic!("not sentinel: {:?}", c.server);
        };
        assert_eq!(service_name, "mymaster");
        assert_eq!(c.database, Some(2));
        assert_eq!(hosts(&c), vec!["s1:26379", "s2:26380"]);
        let c = parse("redis-sentinel://s1/0?sentinelServiceName=m").expect("parses");
        let ServerConfig::Sentinel { service_name, .. } = &c.server else {
            panic!("not sentinel");
        };
        assert_eq!(service_name, "m");
        assert_eq!(hosts(&c), vec!["s1:26379"]);
        assert!(
            parse("redis-sentinel://s1:26379").is_err(),
            "service required"
        );
    }

    #[test]
    fn refusals() {
        assert!(parse("127.0.0.1:6379").is_err());
        assert!(parse("http://127.0.0.1").is_err());
        assert!(parse("redis://a:1,b:2").is_err());
        assert!(parse("redis://").is_err());
        #[cfg(not(feature = "tls"))]
        assert!(parse("rediss://127.0.0.1").is_err());
        #[cfg(feature = "tls")]
        assert!(parse("rediss://127.0.0.1").expect("parses").tls.is_some());
    }

    #[test]
    fn errors_never_echo_the_url() {
        let err = parse("redis://user:hunter2@a:1,b:2").expect_err("refused");
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
}
