//! `passerby moderator add|list|remove`: the operator's hands on the moderator list.
//!
//! They open the moderation store directly (the data dir's, or Redis with `--redis`, a
//! cluster's with `--redis-cluster` too), so they work whether or not the server is running;
//! a removed moderator's token and cookie stop working on its next request.

use std::{io::Write, path::Path};

use clap::Subcommand;

use super::{
    name::ModeratorName,
    store::StoreError,
    time::{self, rfc3339},
    token,
};

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Manage the moderators who may use /admin and /admin/api.
    #[command(subcommand)]
    Moderator(ModeratorCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum ModeratorCommand {
    /// Add a moderator and print their new token, once: only its hash is kept.
    Add {
        /// 1 to 32 letters, digits, `-`, `_` or `.`.
        name: String,
    },
    /// List the moderators, with when each was added.
    List,
    /// Remove a moderator: their token and cookies stop working at once.
    Remove { name: String },
}

/// Runs a command against the data dir's store, or Redis's if `redis` names one; what it
/// prints goes to `out`.
pub fn run(
    command: Command,
    data_dir: &Path,
    redis: Option<&crate::redis_conn::RedisTarget>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if redis.is_none() {
        std::fs::create_dir_all(data_dir)?;
    }
    let store = super::open_store(data_dir, redis)?;
    let Command::Moderator(command) = command;
    match command {
        ModeratorCommand::Add { name } => {
            let name = ModeratorName::parse(&name)?;
            let (token, hash) = token::generate()?;
            match store.add_moderator(&name, &hash, time::now_ms()) {
                Ok(()) => {}
                Err(e @ StoreError::ModeratorExists(_)) => {
                    anyhow::bail!("{e}: remove them first to give them a new token")
                }
                Err(e) => return Err(e.into()),
            }
            writeln!(out, "{token}")?;
            eprintln!(
                "moderator {name} added; the token above is shown only this once: \
                 send it as `Authorization: Bearer <token>` or sign in at /admin"
            );
        }
        ModeratorCommand::List => {
            for moderator in store.moderators()? {
                writeln!(
                    out,
                    "{}\tadded {}",
                    moderator.name,
                    rfc3339(moderator.created_ms)
                )?;
            }
        }
        ModeratorCommand::Remove { name } => {
            let name = ModeratorName::parse(&name)?;
            if !store.remove_moderator(&name)? {
                anyhow::bail!("there is no moderator named {name}");
            }
            eprintln!("moderator {name} removed");
        }
    }
    Ok(())
}
