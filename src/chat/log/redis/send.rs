//! A lane's messages to Redis: one `emit.lua` call per room, the round's calls in one round
//! trip, and an answer for certain to each sender.
//!
//! A call whose answer is lost (a timeout, a dropped connection) may or may not have run, so
//! nothing is said yet: it is sent again, with the same number, until Redis answers. The
//! script runs a numbered call once (a late copy of it does nothing), so the retry cannot
//! store anything twice, and its answer is the first one's. The sender then gets its `ack`
//! (when it gave a `cid`) or the message simply arrives; `not sent` is said only when Redis
//! did not run it: a connection refused before anything was sent, or an error the script
//! itself raised (its first step is the numbered check, so nothing of the call is kept).
//! Meanwhile the lane takes nothing new, its rooms' senders fill the queue and are told
//! `busy`, and other lanes go on.

use std::{collections::HashMap, time::Duration};

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::{global, keys::room_key, queue::Queued, worker::Job, worker::Worker};
use crate::chat::{
    EngineError,
    hub::not_online,
    protocol::{Reply, code},
    room::RoomName,
};

/// The first wait before a call is sent again; it doubles up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// One room's messages in one script call, numbered for the retries.
pub(super) struct Call {
    room: RoomName,
    number: u64,
    jobs: Vec<Queued>,
}

impl Call {
    pub fn new(room: RoomName, number: u64, jobs: Vec<Queued>) -> Call {
        Call { room, number, jobs }
    }
}

/// Whether Redis may still run it: a connection problem or a refusal it would not give once
/// it is ready, as against an error of the script itself.
fn passing(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::Server(kind) => {
            matches!(
                kind,
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            ) || e.code().is_some_and(|c| matches!(c, "BUSY" | "OOM"))
        }
        _ => true,
    }
}

impl Worker {
    pub(super) async fn send(&mut self, mut calls: Vec<Call>) {
        let mut wait = RETRY_FIRST;
        // Set once an answer was lost: from then on only Redis's answer settles the calls.
        let mut unsure = false;
        loop {
            let answers = match self.attempt(&calls).await {
                Ok(answers) => answers,
                Err((e, _)) if !unsure && e.is_connection_refusal() => {
                    for call in calls {
                        self.refuse(call, &e);
                    }
                    return;
                }
                Err((e, sent)) => {
                    unsure |= sent;
                    tracing::warn!(error = %e, calls = calls.len(), "Redis did not answer: sending again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                    continue;
                }
            };
            let mut again = Vec::new();
            let mut load = false;
            for (call, answer) in calls.into_iter().zip(answers) {
                match answer {
                    Ok(ids) => self.answer(call, &ids),
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        load = true;
                        again.push(call);
                    }
                    Err(e) if passing(&e) => {
                        tracing::warn!(error = %e, "Redis refused for now: sending again");
                        again.push(call);
                    }
                    Err(e) => self.refuse(call, &e),
                }
            }
            if again.is_empty() {
                return;
            }
            if load {
                let scripts = self.scripts.clone();
                if let Err(e) = scripts.emit.load_async(&mut self.conn).await {
                    tracing::warn!(error = %e, "loading the emit script");
                }
            } else {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
            calls = again;
        }
    }

    /// The calls in one round trip, once their whispers' recipients are found: each call's
    /// answer, or what kept Redis from answering and whether the calls may have reached it.
    async fn attempt(
        &mut self,
        calls: &[Call],
    ) -> Result<Vec<redis::RedisResult<Vec<u64>>>, (RedisError, bool)> {
        let recipients = self.recipients(calls).await.map_err(|e| (e, false))?;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for call in calls {
            pipe.invoke_script(&self.invocation(call, &recipients));
        }
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await.map_err(|e| (e, true))
    }

    /// Each whisper's recipient as their rooms have them, `None` if offline everywhere: a
    /// room script cannot look outside its room (`global::recipient`).
    async fn recipients(&self, calls: &[Call]) -> redis::RedisResult<HashMap<u64, Option<String>>> {
        let mut found = HashMap::new();
        for call in calls {
            for queued in &call.jobs {
                if let Job::Message { to: Some(to), .. } = &queued.job
                    && !found.contains_key(to)
                {
                    let mut conn = self.conn.clone();
                    let json = global::recipient(&mut conn, &self.scripts, *to).await?;
                    found.insert(*to, json);
                }
            }
        }
        Ok(found)
    }

    fn invocation<'a>(
        &'a self,
        call: &Call,
        recipients: &HashMap<u64, Option<String>>,
    ) -> redis::ScriptInvocation<'a> {
        // Every key of the call, under the room's hash tag, built here (`emit.lua`).
        let mut invocation = self.scripts.room_call(&self.scripts.emit, &call.room);
        invocation
            .key(room_key(&call.room, &format!("applied:{}", self.instance)))
            .arg(call.room.as_str())
            .arg(self.max_events)
            .arg(self.seen.get(&call.room))
            .arg(&self.instance)
            .arg(call.number)
            .arg(self.window)
            .arg(call.jobs.len());
        for queued in &call.jobs {
            if let Job::Message {
                member,
                to,
                event,
                cid,
            } = &queued.job
            {
                if let Some(cid) = cid {
                    invocation.key(room_key(
                        &call.room,
                        &format!("cid:{}:{}", member.user.id, cid.as_str()),
                    ));
                }
                invocation
                    .arg(member.user.id)
                    .arg(cid.as_ref().map_or("", |c| c.as_str()))
                    .arg(to.unwrap_or(0))
                    .arg(&event.kind)
                    .arg(&event.user)
                    .arg(&event.data)
                    .arg(
                        to.and_then(|to| recipients.get(&to).cloned().flatten())
                            .unwrap_or_default(),
                    );
            }
        }
        self.scripts.tail(&mut invocation);
        invocation
    }

    /// Each message's sender learns what became of it: an `ack` if it gave a `cid`, an
    /// `error` for a whisper to nobody online; the message itself comes through pub/sub.
    fn answer(&self, call: Call, ids: &[u64]) {
        if ids.len() != call.jobs.len() {
            tracing::error!(
                room = %call.room,
                sent = call.jobs.len(),
                answered = ids.len(),
                "Redis answered a call for another number of messages"
            );
        }
        for (queued, &id) in call.jobs.iter().zip(ids) {
            let Job::Message {
                member, to, cid, ..
            } = &queued.job
            else {
                continue;
            };
            match (id, cid, to) {
                (0, _, Some(to)) => {
                    let reply = not_online(&self.hub, *to, cid.as_ref());
                    self.hub.reply(member, &reply);
                }
                (0, _, None) => {}
                (id, Some(cid), _) => {
                    let cid = cid.clone();
                    self.hub.reply(member, &Reply::Ack { cid, id });
                }
                (_, None, _) => {}
            }
        }
    }

    /// Redis did not run the call: its senders are told, for certain.
    fn refuse(&self, call: Call, e: &RedisError) {
        tracing::warn!(room = %call.room, error = %e, "messages not sent");
        let text = format!("not sent: {}", EngineError::from(e.clone()));
        for queued in &call.jobs {
            if let Job::Message { member, cid, .. } = &queued.job {
                let refused = Reply::coded(code::NOT_SENT, text.clone(), cid.as_ref());
                self.hub.reply(member, &refused);
            }
        }
    }
}
