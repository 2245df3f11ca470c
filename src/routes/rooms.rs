//! `GET /rooms`: the rooms with people in them, busiest first, for the page's list of rooms.

use axum::{Json, extract::State, http::header, response::IntoResponse};
use serde::Serialize;

use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Room {
    pub name: String,
    pub online: usize,
}

/// At most `--rooms-list` rooms with sockets on this instance (with `--redis`, the others'
/// are not counted), busiest first: `[{"name":"lobby","online":3},…]`. Names are public
/// anyway (anyone may open any room); who is in them is not said.
pub async fn list(State(state): State<AppState>) -> impl IntoResponse {
    let rooms: Vec<Room> = state
        .engine
        .busiest_rooms(state.rooms_list)
        .into_iter()
        .map(|(room, online)| Room {
            name: room.to_string(),
            online,
        })
        .collect();
    // A list that changes by the second: never from a cache.
    ([(header::CACHE_CONTROL, "no-store")], Json(rooms))
}
