//! Which users have sockets open from which client addresses, so a ban of an address range
//! can close the sockets already open from it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use ipnet::IpNet;

#[derive(Debug, Default, Clone)]
pub struct Addresses(Arc<Mutex<HashMap<IpAddr, HashMap<u64, u32>>>>);

/// Holds a socket's place in `Addresses` until dropped.
#[derive(Debug)]
pub struct Tracked {
    addresses: Addresses,
    addr: IpAddr,
    user: u64,
}

impl Addresses {
    pub fn track(&self, addr: IpAddr, user: u64) -> Tracked {
        let addr = addr.to_canonical();
        *self
            .lock()
            .entry(addr)
            .or_default()
            .entry(user)
            .or_default() += 1;
        Tracked {
            addresses: self.clone(),
            addr,
            user,
        }
    }

    /// Users with a socket open from an address in `net`.
    pub fn users_in(&self, net: &IpNet) -> Vec<u64> {
        let mut users: Vec<u64> = self
            .lock()
            .iter()
            .filter(|(addr, _)| net.contains(*addr))
            .flat_map(|(_, users)| users.keys().copied())
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, HashMap<u64, u32>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut map = self.addresses.lock();
        if let Some(users) = map.get_mut(&self.addr) {
            if let Some(count) = users.get_mut(&self.user) {
                *count -= 1;
                if *count == 0 {
                    users.remove(&self.user);
                }
            }
            if users.is_empty() {
                map.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_by_range_until_their_sockets_close() {
        let addresses = Addresses::default();
        let a = addresses.track("203.0.113.5".parse().unwrap(), 1);
        let _b = addresses.track("2001:db8::5".parse().unwrap(), 2);
        let net: IpNet = "203.0.113.0/24".parse().unwrap();
        assert_eq!(addresses.users_in(&net), [1]);
        assert_eq!(addresses.users_in(&"2001:db8::/32".parse().unwrap()), [2]);
        drop(a);
        assert!(addresses.users_in(&net).is_empty());
    }
}
