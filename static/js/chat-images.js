// Images: uploading one and naming it in an `image` message, and the viewer that shows a
// thumbnail's whole picture.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var t = C.t;

  $('#image-button').on('click', function () { $('#image-file').trigger('click'); });

  // Upload first, then name the stored file in an `image` message.
  $('#image-file').on('change', function () {
    var file = this.files && this.files[0];
    $(this).val('');
    upload(file);
  });

  function upload(file) {
    if (!file || !C.connected()) { return; }
    var form = new FormData();
    form.append('file', file);
    var $button = $('#image-button').prop('disabled', true);
    $.ajax({ url: '/upload', method: 'post', data: form, processData: false, contentType: false, dataType: 'json' })
      .done(function (reply) {
        if (reply && reply.code === 0 && C.connected()) {
          C.send({ type: 'image', data: reply.data });
        }
      })
      .fail(function (xhr) {
        var reply = xhr.responseJSON || {};
        var reason = C.errorText($.extend({}, reply, { message: String(reply.data || xhr.statusText || xhr.status) }));
        C.systemLine('error', C.fill(t['upload-failed'], { reason: reason }));
      })
      .always(function () { $button.prop('disabled', false); });
  }

  function firstImage(files) {
    return $.grep(Array.prototype.slice.call(files || []), function (f) { return /^image\//.test(f.type); })[0];
  }

  // A picture pasted into the box, or dropped on the conversation, goes as if picked.
  $('#mes').on('paste', function (e) {
    var file = firstImage(e.originalEvent.clipboardData && e.originalEvent.clipboardData.files);
    if (file) { e.preventDefault(); upload(file); }
  });
  var $drop = $('.conversation');
  $drop.on('dragover', function (e) {
    var types = e.originalEvent.dataTransfer && e.originalEvent.dataTransfer.types;
    if (types && Array.prototype.indexOf.call(types, 'Files') >= 0) {
      e.preventDefault();
      $drop.addClass('dropping');
    }
  });
  $drop.on('dragleave drop', function () { $drop.removeClass('dropping'); });
  $drop.on('drop', function (e) {
    var file = firstImage(e.originalEvent.dataTransfer && e.originalEvent.dataTransfer.files);
    if (file) { e.preventDefault(); upload(file); }
  });

  var opener = null; // the thumbnail that opened the viewer, where focus goes back

  function closeViewer() {
    $('#viewer').prop('hidden', true);
    $('#viewer-image').attr({ src: '', alt: '' });
    if (opener && document.contains(opener)) { opener.focus(); }
    opener = null;
  }

  // A click on a thumbnail shows the whole picture; a modified click still opens a tab.
  C.$log.on('click', 'a.thumb-link', function (e) {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) { return; }
    e.preventDefault();
    opener = this;
    $('#viewer-image').attr({ src: $(this).attr('href'), alt: $(this).attr('aria-label') || '' });
    $('#viewer').prop('hidden', false);
    $('#viewer-close').trigger('focus');
  });
  $('#viewer').on('click', closeViewer);
  $(document).on('keydown', function (e) {
    if ($('#viewer').prop('hidden')) { return; }
    if (e.key === 'Escape') { closeViewer(); }
    // A modal dialog keeps focus: its one control is the close button.
    if (e.key === 'Tab') { e.preventDefault(); $('#viewer-close').trigger('focus'); }
  });
})();
