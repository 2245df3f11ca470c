// What keeps a page that is shown again honest: Back restores a page from the back/forward
// cache as it was, so it is loaded afresh; and the sign-in card's avatars are fetched only
// when the card is shown, so a signed-in visitor does not load them.
(function () {
  'use strict';

  window.addEventListener('pageshow', function (event) {
    if (event.persisted) { window.location.reload(); }
  });

  function showAvatars(card) {
    if (card.hidden) { return false; }
    card.querySelectorAll('img[data-src]').forEach(function (img) {
      img.src = img.getAttribute('data-src');
      img.removeAttribute('data-src');
    });
    return true;
  }

  function watch() {
    var card = document.getElementById('signed-out');
    if (!card || showAvatars(card)) { return; }
    // The page hides or shows the card as the visitor signs out or in.
    var observer = new MutationObserver(function () {
      if (showAvatars(card)) { observer.disconnect(); }
    });
    observer.observe(card, { attributes: true, attributeFilter: ['hidden'] });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', watch);
  } else {
    watch();
  }
}());
