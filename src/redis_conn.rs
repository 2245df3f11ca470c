//! Where Redis is (`--redis`, and `--redis-cluster` for a Redis Cluster) and the one async
//! connection every Redis part uses, a single server's or a cluster's.
//!
//! On a cluster each command goes to the node that holds its key's slot; a script goes by
//! its first key, so every script takes one (its room's, or its global key's). A pipeline
//! there must keep to one slot, so one that crosses slots is sent as separate calls side
//! by side (the connection still writes them together).

use std::time::Duration;

use anyhow::Context;
use futures_util::{FutureExt, future::try_join_all};
use redis::{
    Cmd, Pipeline, RedisFuture, RedisResult, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
};

/// How long a connection may take to open, and a call to be answered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is: one server, or the nodes of a cluster that the client starts from (it
/// learns the others from them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// One URL, or for a cluster several separated by commas.
    pub url: String,
    pub cluster: bool,
}

impl RedisTarget {
    pub fn new(url: &str, cluster: bool) -> Self {
        RedisTarget {
            url: url.to_owned(),
            cluster,
        }
    }

    /// The URLs named: one, or a cluster's nodes.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|u| !u.is_empty())
    }

    /// A client of one server: the only one, or the first node named.
    pub fn client(&self) -> anyhow::Result<redis::Client> {
        let url = self.urls().next().unwrap_or_default();
        redis::Client::open(url).with_context(|| format!("bad Redis URL {url}"))
    }

    /// A client of each server named, for subscriptions (`pubsub`): the one, or a cluster's
    /// nodes in the order given, any of which hears every channel.
    pub fn clients(&self) -> anyhow::Result<Vec<redis::Client>> {
        self.urls()
            .map(|url| redis::Client::open(url).with_context(|| format!("bad Redis URL {url}")))
            .collect()
    }

    /// A client of the cluster its nodes name, for async or blocking connections.
    pub fn cluster_client(
        &self,
        connect: Duration,
        response: Duration,
    ) -> anyhow::Result<ClusterClient> {
        ClusterClient::builder(self.urls().map(str::to_owned))
            .connection_timeout(connect)
            .response_timeout(response)
            .retries(2)
            .build()
            .with_context(|| format!("bad Redis Cluster URLs {}", self.url))
    }

    /// Opens the connection, or fails with a clear error if Redis cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<RedisConn> {
        let conn = if self.cluster {
            let client = self.cluster_client(CONNECT_TIMEOUT, RESPONSE_TIMEOUT)?;
            RedisConn::Cluster(
                client
                    .get_async_connection()
                    .await
                    .with_context(|| format!("cannot reach Redis Cluster at {}", self.url))?,
            )
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            RedisConn::Single(
                ConnectionManager::new_with_config(self.client()?, config)
                    .await
                    .with_context(|| format!("cannot reach Redis at {}", self.url))?,
            )
        };
        let mut check = conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut check)
            .await
            .with_context(|| format!("cannot use Redis at {}", self.url))?;
        Ok(conn)
    }
}

/// A connection to one Redis server (reconnecting by itself) or to a Redis Cluster.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConn::Single(_) => "RedisConn::Single",
            RedisConn::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl RedisConn {
    /// The keys that match `pattern`, on every primary of a cluster. Each key comes once,
    /// or more than once if it is renamed meanwhile, as `SCAN` promises.
    pub async fn scan(&mut self, pattern: &str) -> RedisResult<Vec<String>> {
        let nodes = match self {
            RedisConn::Single(_) => vec![None],
            RedisConn::Cluster(conn) => primaries(conn).await?.into_iter().map(Some).collect(),
        };
        let mut found = Vec::new();
        for node in nodes {
            let mut cursor = 0u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, keys): (u64, Vec<String>) = match (&mut *self, &node) {
                    (RedisConn::Cluster(conn), Some((host, port))) => {
                        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        });
                        redis::from_redis_value(conn.route_command(scan, routing).await?)?
                    }
                    (conn, _) => scan.query_async(conn).await?,
                };
                found.extend(keys);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(found)
    }
}

/// The address of each primary of the cluster.
async fn primaries(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
    let shards: Value = conn
        .route_command(redis::cmd("CLUSTER").arg("SLOTS").clone(), routing)
        .await?;
    // Each slot range: [start, end, [host, port, id, …] of the primary, replicas…].
    let ranges: Vec<Vec<Value>> = redis::from_redis_value(shards)?;
    let mut out = Vec::new();
    for range in ranges {
        let Some(primary) = range.get(2) else {
            continue;
        };
        let node: Vec<Value> = redis::from_redis_value(primary.clone())?;
        if let (Some(host), Some(port)) = (node.first(), node.get(1)) {
            let host: String = redis::from_redis_value(host.clone())?;
            let port: u16 = redis::from_redis_value(port.clone())?;
            if !out.contains(&(host.clone(), port)) {
                out.push((host, port));
            }
        }
    }
    Ok(out)
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if let RedisConn::Cluster(conn) = self
            && !(pipeline.is_transaction() || pipeline.len() < 2)
        {
            // Each command alone, to its own slot's node, all at once; each answer (an
            // error too) in the place the pipeline gives it.
            let conn = conn.clone();
            return async move {
                let calls = pipeline.cmd_iter().map(|cmd| {
                    let mut conn = conn.clone();
                    let mut one = redis::pipe();
                    one.add_command(cmd.clone());
                    async move { conn.req_packed_commands(&one, 0, 1).await }
                });
                let answers = try_join_all(calls).await?;
                Ok(answers.into_iter().flatten().collect())
            }
            .boxed();
        }
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}
