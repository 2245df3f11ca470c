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
        var reason = (xhr.responseJSON && xhr.responseJSON.data) || xhr.statusText || xhr.status;
        C.systemLine('error', C.fill(t['upload-failed'], { reason: reason }));
      })
      .always(function () { $button.prop('disabled', false); });
  });

  function closeViewer() {
    $('#viewer').prop('hidden', true);
    $('#viewer-image').attr('src', '');
  }

  // A click on a thumbnail shows the whole picture; a modified click still opens a tab.
  C.$log.on('click', 'a.thumb-link', function (e) {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) { return; }
    e.preventDefault();
    $('#viewer-image').attr('src', $(this).attr('href'));
    $('#viewer').prop('hidden', false);
    $('#viewer-close').trigger('focus');
  });
  $('#viewer').on('click', closeViewer);
  $(document).on('keydown', function (e) {
    if (e.key === 'Escape' && !$('#viewer').prop('hidden')) { closeViewer(); }
  });
})();
