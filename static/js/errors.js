// What the server refused, in the page's language: each `error` event and each refused
// request carries a stable code and its params (docs/PROTOCOL.md), worded here in Chinese or
// English. An unknown code, or one moderation.js words (muted, banned), shows the server's
// own text.
(function () {
  'use strict';

  var NAME_RULES = {
    zh: {
      empty: '名字不能为空',
      too_long: '名字最多 {max} 个字符',
      control: '名字不能包含控制字符或换行（{char}）',
      joiner: '名字不能包含零宽连接符（U+200D）：组合表情请一个一个地用',
      format: '名字不能包含不可见的格式字符（{char}）',
      blank: '名字不能包含显示为空白的字符（{char}）',
      leading_mark: '名字不能以组合符号开头（{char}）',
      stacked_marks: '一个字符上最多叠加 {max_marks} 个组合符号'
    },
    en: {
      empty: 'The name must not be empty',
      too_long: 'The name must be at most {max} characters',
      control: 'The name must not contain control characters or line breaks ({char})',
      joiner: 'The name must not contain U+200D (the zero-width joiner): use emoji one by one',
      format: 'The name must not contain invisible formatting characters ({char})',
      blank: 'The name must not contain characters that show as blank ({char})',
      leading_mark: 'The name must not start with a combining mark ({char})',
      stacked_marks: 'At most {max_marks} combining marks on one character'
    }
  };

  var TEXT = {
    zh: {
      rate_limited: '发送太快了，请慢一点（大约每 {every_ms} 毫秒一条），超出限制的消息没有发出',
      too_long: '消息有 {len} 个字符，最多 {max} 个',
      filtered: '没有发出：消息含有管理员过滤的词',
      bad_command: '没有发出：服务器不认识这条命令',
      bad_recipient: '私信要发给别人',
      bad_image: '没有发出：这不是本站上传的图片',
      busy: '服务器正忙，没有发出：请稍后再试',
      not_sent: '没有发出：服务器没能保存',
      not_online: '{who} 不在线，私信没有发出',
      read_only: '这个房间是只读的',
      slow_mode: '慢速模式：这里每 {every} 秒只能发一条，请等 {wait} 秒',
      history_unavailable: '暂时读不到历史消息',
      users_unavailable: '暂时读不到在线用户',
      cross_origin: '来自其他网站的请求，已拒绝',
      cross_site: '来自其他网站的请求，已拒绝',
      sign_in_rate_limited: '登录太频繁了，请稍后再试',
      name_filtered: '这个名字含有管理员过滤的词',
      server_full: '服务器已满，不能再登录',
      server_busy: '服务器正忙，请稍后再试',
      upload_not_signed_in: '请先登录再上传图片',
      upload_too_large: '图片太大了：最多 {max_mib} MiB',
      upload_unsupported_type: '只能上传 PNG、JPEG、GIF 或 WebP 图片',
      upload_svg: '不能上传 SVG 图片（它可能带有脚本）：请用 PNG、JPEG、GIF 或 WebP',
      upload_malformed: '上传的内容无法识别',
      upload_busy: '上一张图片还在上传，请稍后再试',
      upload_server_busy: '服务器正忙，请 {retry} 秒后再上传',
      upload_rate_limited: '上传太频繁了，请 {retry} 秒后再试',
      upload_quota: '上传已达额度，请 {retry} 秒后再试',
      upload_timeout: '上传超时了',
      upload_store_unavailable: '图片存储暂时不可用，请 {retry} 秒后再试',
      user: '用户 {id}'
    },
    en: {
      rate_limited: 'Too many messages: slow down (about one every {every_ms} ms); messages over the limit were not sent',
      too_long: 'The message is {len} characters; the limit is {max}',
      filtered: 'Not sent: the message contains a word the moderators filter out',
      bad_command: 'Not sent: the server did not understand the command',
      bad_recipient: 'A private message needs someone else',
      bad_image: 'Not sent: that is not an image uploaded here',
      busy: 'The server is busy and did not send it: try again in a moment',
      not_sent: 'Not sent: the server could not store it',
      not_online: '{who} is not online: the whisper was not sent',
      read_only: 'This room is read-only',
      slow_mode: 'Slow mode: one message every {every} s here; wait {wait} s',
      history_unavailable: 'The history could not be read',
      users_unavailable: 'The list of people could not be read',
      cross_origin: 'Refused: the request came from another site',
      cross_site: 'Refused: the request came from another site',
      sign_in_rate_limited: 'Too many sign-ins: wait a moment and try again',
      name_filtered: 'The name contains a word the moderators filter out',
      server_full: 'The server is full: no more sign-ins',
      server_busy: 'The server is busy: try again in a moment',
      upload_not_signed_in: 'Sign in to upload images',
      upload_too_large: 'The image is too large: {max_mib} MiB at most',
      upload_unsupported_type: 'Only PNG, JPEG, GIF and WebP images can be uploaded',
      upload_svg: 'SVG images are not accepted (they may carry script): send PNG, JPEG, GIF or WebP',
      upload_malformed: 'The upload could not be read',
      upload_busy: 'An image is still uploading: try again in a moment',
      upload_server_busy: 'The server is busy: upload again in {retry} s',
      upload_rate_limited: 'Too many uploads: try again in {retry} s',
      upload_quota: 'Upload quota reached: try again in {retry} s',
      upload_timeout: 'The upload timed out',
      upload_store_unavailable: 'Image storage is unavailable: try again in {retry} s',
      user: 'user {id}'
    }
  };

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      var value = values[key];
      return value === undefined || value === null ? whole : String(value);
    });
  }

  function language() {
    return /^zh/i.test(document.documentElement.lang || 'zh') ? 'zh' : 'en';
  }

  // `err` is an `error` event (`code` a string) or a refused request's body (`code` 1 and
  // the string in `error`); both hold `params` and the English text in `data`.
  function errorText(err) {
    if (!err) { return ''; }
    var message = err.data === undefined ? (err.message || '') : String(err.data);
    var code = typeof err.code === 'string' ? err.code : err.error;
    var params = (err.params && typeof err.params === 'object') ? err.params : {};
    var lang = language();
    var text = TEXT[lang];
    var values = {};
    Object.keys(params).forEach(function (key) { values[key] = params[key]; });
    if (typeof params.retry_after_ms === 'number') {
      values.retry = Math.max(1, Math.ceil(params.retry_after_ms / 1000));
    }
    if (code === 'not_online') {
      values.who = params.name || fill(text.user, { id: params.id });
    }
    if (typeof params.max_bytes === 'number') {
      values.max_mib = Math.round(params.max_bytes / 104857.6) / 10;
    }
    if (code === 'room_rules') { code = params.rule; }
    if (code === 'upload_unsupported_type' && params.svg) { code = 'upload_svg'; }
    if (code === 'bad_name') {
      var rule = NAME_RULES[lang][params.rule];
      return rule ? fill(rule, values) : message;
    }
    return Object.prototype.hasOwnProperty.call(text, code) && code !== 'user'
      ? fill(text[code], values) : message;
  }

  window.passerbyErrorText = errorText;
}());
