//! Bans by user and by address range, held in memory for the checks on every sign-in,
//! socket and upload; the store keeps them across restarts.

use std::{collections::HashMap, net::IpAddr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::time::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanTarget {
    User(u64),
    /// A single address is a /32 or /128.
    Address(IpNet),
}

#[derive(Debug, Clone)]
pub struct NewBan {
    pub target: BanTarget,
    pub reason: String,
    pub moderator: String,
    pub created: i64,
    /// `None`: until lifted.
    pub until: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Ban {
    pub id: i64,
    pub target: BanTarget,
    pub reason: String,
    pub moderator: String,
    pub created: i64,
    pub until: Option<i64>,
}

impl Ban {
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.until.is_none_or(|until| until > now_ms)
    }

    /// What the banned are told: why, and until when.
    pub fn describe(&self) -> String {
        let until = match self.until {
            Some(until) => format!("until {}", rfc3339(until)),
            None => "until lifted".to_owned(),
        };
        if self.reason.is_empty() {
            format!("banned {until}")
        } else {
            format!("banned {until}: {}", self.reason)
        }
    }
}

/// The API's shape: `{"id","user"|"address","reason","moderator","created","until"}`.
impl Serialize for Ban {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("id", &self.id)?;
        match self.target {
            BanTarget::User(id) => map.serialize_entry("user", &id)?,
            BanTarget::Address(net) => map.serialize_entry("address", &net.to_string())?,
        }
        map.serialize_entry("reason", &self.reason)?;
        map.serialize_entry("moderator", &self.moderator)?;
        map.serialize_entry("created", &self.created)?;
        map.serialize_entry("until", &self.until)?;
        map.end()
    }
}

/// The same shape read back, for the Redis store and the changes it publishes.
impl<'de> Deserialize<'de> for Ban {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            id: i64,
            user: Option<u64>,
            address: Option<String>,
            reason: String,
            moderator: String,
            created: i64,
            until: Option<i64>,
        }
        let f = Fields::deserialize(deserializer)?;
        let target = match (f.user, f.address) {
            (Some(user), None) => BanTarget::User(user),
            (None, Some(address)) => BanTarget::Address(
                address
                    .parse()
                    .map_err(|_| serde::de::Error::custom("a ban's address is not a range"))?,
            ),
            _ => return Err(serde::de::Error::custom("a ban names a user or an address")),
        };
        Ok(Ban {
            id: f.id,
            target,
            reason: f.reason,
            moderator: f.moderator,
            created: f.created,
            until: f.until,
        })
    }
}

/// The bans in force, indexed for the checks. Address bans are few (capped by `--max-bans`)
/// and a check walks them; user bans are a map lookup.
#[derive(Debug, Default)]
pub struct Bans {
    by_id: HashMap<i64, Ban>,
    users: HashMap<u64, Vec<i64>>,
    nets: Vec<(IpNet, i64)>,
}

impl Bans {
    pub fn new(bans: Vec<Ban>) -> Self {
        let mut out = Bans::default();
        for ban in bans {
            out.insert(ban);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn get(&self, id: i64) -> Option<&Ban> {
        self.by_id.get(&id)
    }

    /// Puts a ban in force; one with the same id is replaced, so a change heard twice (once
    /// published, once reloaded) counts once.
    pub fn insert(&mut self, ban: Ban) {
        self.remove(ban.id);
        match ban.target {
            BanTarget::User(user) => self.users.entry(user).or_default().push(ban.id),
            BanTarget::Address(net) => self.nets.push((net, ban.id)),
        }
        self.by_id.insert(ban.id, ban);
    }

    pub fn remove(&mut self, id: i64) -> Option<Ban> {
        let ban = self.by_id.remove(&id)?;
        match ban.target {
            BanTarget::User(user) => {
                if let Some(ids) = self.users.get_mut(&user) {
                    ids.retain(|i| *i != id);
                    if ids.is_empty() {
                        self.users.remove(&user);
                    }
                }
            }
            BanTarget::Address(_) => self.nets.retain(|(_, i)| *i != id),
        }
        Some(ban)
    }

    /// Drops the bans that ended by `now_ms`.
    pub fn expire(&mut self, now_ms: i64) {
        let ended: Vec<i64> = self
            .by_id
            .values()
            .filter(|b| !b.in_force(now_ms))
            .map(|b| b.id)
            .collect();
        for id in ended {
            self.remove(id);
        }
    }

    /// The ban in force on this user or this address, if any: the one that ends last.
    pub fn find(&self, user: Option<u64>, addr: Option<IpAddr>, now_ms: i64) -> Option<&Ban> {
        let by_user = user.and_then(|u| self.users.get(&u)).into_iter().flatten();
        let addr = addr.map(|a| a.to_canonical());
        let by_addr = self
            .nets
            .iter()
            .filter(move |(net, _)| addr.is_some_and(|a| net.contains(&a)))
            .map(|(_, id)| id);
        by_user
            .chain(by_addr)
            .filter_map(|id| self.by_id.get(id))
            .filter(|b| b.in_force(now_ms))
            .max_by_key(|b| b.until.unwrap_or(i64::MAX))
    }

    /// Newest first, ids below `before`, at most `limit`.
    pub fn page(&self, before: Option<i64>, limit: usize) -> Vec<Ban> {
        let mut bans: Vec<&Ban> = self
            .by_id
            .values()
            .filter(|b| before.is_none_or(|before| b.id < before))
            .collect();
        bans.sort_unstable_by_key(|b| std::cmp::Reverse(b.id));
        bans.into_iter().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(id: i64, target: BanTarget, until: Option<i64>) -> Ban {
        Ban {
            id,
            target,
            reason: "spam".into(),
            moderator: "m".into(),
            created: 0,
            until,
        }
    }

    #[test]
    fn address_bans_match_ranges_of_either_family_and_expire() {
        let bans = Bans::new(vec![
            ban(
                1,
                BanTarget::Address("203.0.113.0/24".parse().unwrap()),
                None,
            ),
            ban(
                2,
                BanTarget::Address("2001:db8:1::/48".parse().unwrap()),
                Some(100),
            ),
            ban(3, BanTarget::User(7), Some(50)),
        ]);
        let v4 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(bans.find(None, v4("203.0.113.9"), 0).map(|b| b.id), Some(1));
        assert_eq!(
            bans.find(None, v4("::ffff:203.0.113.9"), 0).map(|b| b.id),
            Some(1)
        );
        assert!(bans.find(None, v4("203.0.114.1"), 0).is_none());
        assert_eq!(
            bans.find(None, v4("2001:db8:1:ff::1"), 99).map(|b| b.id),
            Some(2)
        );
        assert!(bans.find(None, v4("2001:db8:1:ff::1"), 100).is_none());
        assert_eq!(bans.find(Some(7), None, 49).map(|b| b.id), Some(3));
        assert!(bans.find(Some(7), None, 50).is_none());
        assert_eq!(
            bans.find(Some(7), v4("203.0.113.1"), 0).map(|b| b.id),
            Some(1)
        );
    }

    #[test]
    fn removing_and_expiring_take_a_ban_out_of_every_index() {
        let mut bans = Bans::new(vec![
            ban(1, BanTarget::User(7), None),
            ban(
                2,
                BanTarget::Address("192.0.2.1/32".parse().unwrap()),
                Some(10),
            ),
        ]);
        assert!(bans.remove(1).is_some());
        assert!(bans.find(Some(7), None, 0).is_none());
        bans.expire(10);
        assert!(bans.is_empty());
        assert_eq!(bans.page(None, 10).len(), 0);
    }
}
