//! One build's servers for a `--compare` measurement: an embedded instance, or instances over a
//! redis-server of their own, each with a fresh data directory.

use std::path::Path;

use anyhow::Context;
use passerby_bench::{client::Target, server::Server};

use super::Engine;
use crate::{Args, redis::Redis, start_with, tempfile_dir};

pub(crate) struct Setup {
    pub target: Target,
    servers: Vec<Server>,
    redis: Option<Redis>,
    // Dropped after the servers that write into them have stopped.
    dirs: Vec<tempfile_dir::Dir>,
}

impl Setup {
    /// Starts `program` for `engine`; `build` keeps this build's directories apart from the
    /// other's while both run.
    pub async fn start(
        args: &Args,
        build: &str,
        program: &Path,
        engine: Engine,
    ) -> anyhow::Result<Setup> {
        let redis = match engine {
            Engine::Redis => Some(Redis::start(&args.server_cpu).await?),
            Engine::Embedded => None,
        };
        let extra = redis.as_ref().map(Redis::flags).unwrap_or_default();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let instances = match engine {
            Engine::Redis => args.compare_redis_instances.max(1),
            Engine::Embedded => 1,
        };
        // Run as the given build, whichever `--passerby` says.
        let args = Args {
            passerby: program.to_path_buf(),
            ..args.clone()
        };
        let mut setup = Setup {
            target: Target {
                addr: ([127, 0, 0, 1], 0).into(),
                others: Vec::new(),
                rooms: true,
            },
            servers: Vec::new(),
            redis,
            dirs: Vec::new(),
        };
        for i in 0..instances {
            let dir = tempfile_dir::Dir::new_named(&format!("compare-{build}{i}"))?;
            let started = start_with(&args, "passerby", &dir, &extra).await;
            setup.dirs.push(dir);
            let (server, target) = match started {
                Ok(started) => started,
                Err(e) => {
                    setup.stop().await;
                    return Err(e).with_context(|| format!("starting {}", program.display()));
                }
            };
            match i {
                0 => setup.target = target,
                _ => setup.target.others.push(target.addr),
            }
            setup.servers.push(server);
        }
        Ok(setup)
    }

    /// The passerby instances.
    pub fn servers(&self) -> Vec<u32> {
        self.servers.iter().map(Server::pid).collect()
    }

    /// The instances, then redis-server if there is one: whose CPU a delivery costs.
    pub fn all(&self) -> Vec<u32> {
        let mut pids = self.servers();
        pids.extend(self.redis.as_ref().map(Redis::pid));
        pids
    }

    pub async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
        if let Some(redis) = self.redis {
            redis.stop().await;
        }
        drop(self.dirs);
    }
}
