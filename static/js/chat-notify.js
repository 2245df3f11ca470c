// Desktop notifications, only when asked for (the #notify box, remembered in this
// browser): a whisper or a mention of our name while the page is not in front.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  var KEY = 'passerby.notify';
  var supported = typeof window.Notification === 'function';

  function wanted() {
    try { return window.localStorage.getItem(KEY) === '1'; } catch (e) { return false; }
  }

  function remember(on) {
    try { window.localStorage.setItem(KEY, on ? '1' : '0'); } catch (e) { /* private mode */ }
  }

  var $box = $('#notify');
  $box.closest('label').prop('hidden', !supported);
  $box.prop('checked', supported && wanted() && Notification.permission === 'granted');
  $box.on('change', function () {
    if (!this.checked) { remember(false); return; }
    var box = this;
    Promise.resolve(Notification.requestPermission()).then(function (permission) {
      box.checked = permission === 'granted';
      remember(box.checked);
    });
  });

  // A live message from someone else: whispered to us, or naming us with @.
  C.notify = function (ev) {
    if (!supported || !$box.prop('checked') || Notification.permission !== 'granted') { return; }
    if (S.me === null || !ev.user || ev.user.id === S.me.id) { return; }
    var forMe = ev.type === 'private' || (ev.type === 'chat' && C.mentionsMe(ev.data));
    if (!forMe) { return; }
    if (document.visibilityState === 'visible' && document.hasFocus()) { return; }
    var note = new Notification(ev.user.name, { body: String(ev.data).slice(0, 200), tag: 'passerby-' + ev.id });
    note.onclick = function () { window.focus(); note.close(); };
  };
})();
