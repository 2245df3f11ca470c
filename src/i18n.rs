//! The page's language: Chinese, as in the seed, unless the browser's `Accept-Language`
//! prefers English. Every string the page shows lives here, in both languages.

mod moderation;

pub use moderation::ModStrings;

/// A language the page is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// Picks the language from an `Accept-Language` header (RFC 9110 §12.5.4).
    ///
    /// Each supported language takes the highest q of the ranges naming it (`en`, `en-GB`, …),
    /// or the q of `*` when none does. The highest q wins; on a tie the one listed first wins.
    /// Chinese is the default: no header, nothing acceptable, or only unknown languages.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let Some(header) = accept_language else {
            return Lang::Zh;
        };
        let mut wildcard = None;
        // (quality in thousandths, position in the header) of the best range for each language.
        let mut zh: Option<(u16, usize)> = None;
        let mut en: Option<(u16, usize)> = None;
        for (position, item) in header.split(',').enumerate() {
            let Some((range, q)) = parse_item(item) else {
                continue;
            };
            let primary = range.split('-').next().unwrap_or("");
            let slot = if range == "*" {
                &mut wildcard
            } else if primary.eq_ignore_ascii_case("zh") {
                &mut zh
            } else if primary.eq_ignore_ascii_case("en") {
                &mut en
            } else {
                continue;
            };
            if slot.is_none_or(|(best, _)| q > best) {
                *slot = Some((q, position));
            }
        }
        let zh = zh.or(wildcard).unwrap_or((0, usize::MAX));
        let en = en.or(wildcard).unwrap_or((0, usize::MAX));
        let prefers_english = en.0 > zh.0 || (en.0 == zh.0 && en.0 > 0 && en.1 < zh.1);
        if prefers_english { Lang::En } else { Lang::Zh }
    }

    /// The value of `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// What the pages say about moderation.
    pub fn moderation(self) -> &'static ModStrings {
        match self {
            Lang::Zh => &moderation::ZH,
            Lang::En => &moderation::EN,
        }
    }
}

/// One `Accept-Language` item: its range and its quality in thousandths. `None` if malformed.
fn parse_item(item: &str) -> Option<(&str, u16)> {
    let mut parts = item.split(';');
    let range = parts.next()?.trim();
    if range.is_empty()
        || !range
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
    {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (key, value) = param.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("q") {
            q = parse_qvalue(value.trim())?;
        }
    }
    Some((range, q))
}

/// A qvalue, `0`–`1` with at most three decimals, in thousandths.
fn parse_qvalue(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// What the page says. The `js_*` strings go to the script through `data-` attributes;
/// `{name}`, `{seconds}` and `{reason}` are filled in there, as text.
#[derive(Debug)]
pub struct Strings {
    pub title: &'static str,
    pub welcome: &'static str,
    pub welcome_text: &'static str,
    pub name_label: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub online: &'static str,
    pub empty_log: &'static str,
    pub placeholder: &'static str,
    pub send: &'static str,
    pub new_messages: &'static str,
    pub js_connecting: &'static str,
    pub js_connected: &'static str,
    pub js_reconnecting: &'static str,
    pub js_signed_out: &'static str,
    pub js_refused: &'static str,
    /// Close code 4004: this user has too many sockets (tabs) open.
    pub js_too_many_tabs: &'static str,
    /// Close code 4005: too many new rooms from this user, or on this server.
    pub js_too_many_rooms: &'static str,
    pub js_joined: &'static str,
    pub js_left: &'static str,
    pub js_you: &'static str,
    pub js_sign_in_failed: &'static str,
    pub js_not_connected: &'static str,
    pub room: &'static str,
    pub room_placeholder: &'static str,
    pub room_go: &'static str,
    pub bad_room_title: &'static str,
    pub bad_room_text: &'static str,
    pub back_to_lobby: &'static str,
    pub image_button: &'static str,
    pub whisper_cancel: &'static str,
    pub image_close: &'static str,
    pub js_whisper_to: &'static str,
    pub js_private_to: &'static str,
    pub js_private_from: &'static str,
    pub js_bad_room: &'static str,
    pub js_upload_failed: &'static str,
    pub js_click_to_whisper: &'static str,
    /// At the top of the conversation while an older page is on its way.
    pub js_loading_older: &'static str,
    /// At the top of the conversation once no older events remain.
    pub js_beginning: &'static str,
    /// Under a big room's online list while more users remain to load: `{n}` of them.
    pub js_more_users: &'static str,
    /// The conversation's name for screen readers.
    pub log_label: &'static str,
    /// The button next to the reconnect countdown that does not wait it out.
    pub retry_now: &'static str,
    pub rooms_title: &'static str,
    /// The opt-in to desktop notifications of mentions and whispers.
    pub notify_label: &'static str,
    /// The name of the dialog that shows an image whole.
    pub image_viewer: &'static str,
    /// A thumbnail link's name: `{name}` sent it.
    pub js_image_from: &'static str,
    /// Under the compose box once a message is over the limit: `{n}` characters too many.
    pub js_too_long: &'static str,
}

const ZH: Strings = Strings {
    title: "网络聊天室",
    welcome: "欢迎，过路的朋友",
    welcome_text: "起个名字就能聊天，不用注册。也可以直接用我们为你准备的名字。",
    name_label: "你的名字",
    sign_in: "登入",
    sign_out: "退出",
    online: "在线",
    empty_log: "还没有人说话，打个招呼吧。",
    placeholder: "请输入信息",
    send: "发送消息",
    new_messages: "有新消息",
    js_connecting: "正在连接…",
    js_connected: "已连接",
    js_reconnecting: "连接已断开，{seconds} 秒后重新连接…",
    js_signed_out: "你已退出，请重新登入。",
    js_refused: "无法连接：{reason}",
    js_too_many_tabs: "你打开的聊天页面太多了：请关掉一个，再刷新本页。",
    js_too_many_rooms: "新开的聊天室太多了：请稍等一分钟再刷新本页，或回到已有的聊天室。",
    js_joined: "{name} 加入了聊天室",
    js_left: "{name} 离开了聊天室",
    js_you: "我",
    js_sign_in_failed: "登入失败",
    js_not_connected: "还没有连上，消息未发送。",
    room: "房间",
    room_placeholder: "换个房间或新建一个",
    room_go: "进入",
    bad_room_title: "房间名无效",
    bad_room_text: "房间名是 1–32 个字母（中文也可以）、数字、- 或 _。",
    back_to_lobby: "回到大厅",
    image_button: "发送图片",
    whisper_cancel: "取消私聊",
    image_close: "关闭",
    js_whisper_to: "私聊 {name}",
    js_private_to: "悄悄对 {name} 说",
    js_private_from: "悄悄对你说",
    js_bad_room: "房间名须为 1–32 个字母、数字、- 或 _",
    js_upload_failed: "图片没有发出：{reason}",
    js_click_to_whisper: "点击和 {name} 私聊",
    js_loading_older: "正在加载更早的消息…",
    js_beginning: "对话从这里开始",
    js_more_users: "还有 {n} 人…",
    log_label: "聊天记录",
    retry_now: "立即重连",
    rooms_title: "有人的房间",
    notify_label: "有人@我或私聊我时通知我",
    image_viewer: "查看图片",
    js_image_from: "{name} 发的图片",
    js_too_long: "消息太长：多了 {n} 个字，删减后才能发送。",
};

const EN: Strings = Strings {
    title: "Chat room",
    welcome: "Welcome, passer-by",
    welcome_text: "Pick a name and start talking. No account needed, or take the name we picked for you.",
    name_label: "Your name",
    sign_in: "Sign in",
    sign_out: "Sign out",
    online: "Online",
    empty_log: "No messages yet. Say hello!",
    placeholder: "Type a message",
    send: "Send",
    new_messages: "New messages",
    js_connecting: "Connecting…",
    js_connected: "Connected",
    js_reconnecting: "Connection lost. Reconnecting in {seconds} s",
    js_signed_out: "You are signed out. Please sign in again.",
    js_refused: "Cannot connect: {reason}",
    js_too_many_tabs: "Too many chat tabs open: close one, then reload this page.",
    js_too_many_rooms: "Too many new rooms: wait a minute and reload this page, or go back to a room in use.",
    js_joined: "{name} joined",
    js_left: "{name} left",
    js_you: "you",
    js_sign_in_failed: "Sign-in failed",
    js_not_connected: "Not connected yet; the message was not sent.",
    room: "Room",
    room_placeholder: "Switch to or create a room",
    room_go: "Go",
    bad_room_title: "Invalid room name",
    bad_room_text: "A room name is 1–32 letters (any script), digits, - or _.",
    back_to_lobby: "Back to the lobby",
    image_button: "Send an image",
    whisper_cancel: "Stop whispering",
    image_close: "Close",
    js_whisper_to: "Whisper to {name}",
    js_private_to: "privately to {name}",
    js_private_from: "privately to you",
    js_bad_room: "A room name is 1–32 letters, digits, - or _",
    js_upload_failed: "Image not sent: {reason}",
    js_click_to_whisper: "Click to whisper to {name}",
    js_loading_older: "Loading earlier messages…",
    js_beginning: "This is the beginning of the conversation",
    js_more_users: "{n} more…",
    log_label: "Conversation",
    retry_now: "Retry now",
    rooms_title: "Rooms with people",
    notify_label: "Notify me of mentions and whispers",
    image_viewer: "Image viewer",
    js_image_from: "Image from {name}",
    js_too_long: "Too long by {n} characters: shorten it to send.",
};

#[cfg(test)]
mod tests {
    use super::Lang::{self, En, Zh};

    fn pick(header: &str) -> Lang {
        Lang::negotiate(Some(header))
    }

    #[test]
    fn chinese_is_the_default() {
        assert_eq!(Lang::negotiate(None), Zh);
        assert_eq!(pick(""), Zh);
        assert_eq!(pick("*"), Zh);
        assert_eq!(pick("de-DE, fr;q=0.8"), Zh);
    }

    #[test]
    fn english_when_it_is_preferred() {
        assert_eq!(pick("en-US,en;q=0.9"), En);
        assert_eq!(pick("EN-gb"), En);
        assert_eq!(
            pick("fr-FR, en;q=0.5"),
            En,
            "the only acceptable one we have"
        );
        assert_eq!(pick("zh-TW;q=0.9, en-US;q=0.95"), En);
    }

    #[test]
    fn chinese_when_it_is_preferred() {
        assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8"), Zh);
        assert_eq!(pick("en;q=0.8, zh;q=0.9"), Zh, "q decides, not the order");
        assert_eq!(pick("zh-Hant-TW, en-US;q=0.9"), Zh);
    }

    #[test]
    fn a_tie_goes_to_the_one_listed_first() {
        assert_eq!(pick("en, zh"), En);
        assert_eq!(pick("zh, en"), Zh);
        assert_eq!(pick("en;q=0.5, zh;q=0.500"), En);
    }

    #[test]
    fn q_zero_means_not_acceptable() {
        assert_eq!(pick("en;q=0, *"), Zh);
        assert_eq!(pick("zh;q=0, en;q=0.1"), En);
        assert_eq!(pick("zh;q=0, *;q=0.5"), En, "the wildcard covers English");
    }

    #[test]
    fn the_best_range_of_a_language_counts() {
        assert_eq!(pick("en-US;q=0.2, zh;q=0.5, en;q=0.9"), En);
    }

    #[test]
    fn malformed_items_are_skipped() {
        assert_eq!(pick("en;q=abc, zh;q=0.1"), Zh);
        assert_eq!(pick("en;q=1.5, zh;q=0.1"), Zh);
        assert_eq!(pick("en;q=0.1234"), Zh);
        assert_eq!(pick("en;q, zh;q=0.1"), Zh);
        assert_eq!(pick("english"), Zh, "a primary subtag must match exactly");
        assert_eq!(pick("<en>, en-US;q=0.3"), En);
        assert_eq!(pick(" ,, en ; q=0.7 ,"), En, "whitespace and empty items");
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        use super::parse_qvalue;
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue(".5"), None);
        assert_eq!(parse_qvalue("0.-1"), None);
    }

    #[test]
    fn tags_match_the_html_lang() {
        assert_eq!(Zh.tag(), "zh-CN");
        assert_eq!(En.tag(), "en");
        assert_eq!(En.strings().sign_in, "Sign in");
        assert_eq!(Zh.strings().send, "发送消息");
    }
}
