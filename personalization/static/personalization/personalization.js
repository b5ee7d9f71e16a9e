/* django-personalization: click beacons and the signup popup. No dependencies, no build.
   Configured by data-* attributes on its <script> tag and in personalization/popup.html. */
(() => {
  "use strict";

  const script = document.currentScript || document.querySelector("script[data-events-url]");
  const eventsUrl = (script && script.dataset.eventsUrl) || "";

  // sendBeacon survives the page being left, but sends a Blob of another type than text/plain
  // only in some browsers; the server takes text/plain from this site's own pages only (the
  // browser's Sec-Fetch-Site or Origin header says so). The fallback posts application/json.
  function send(payload) {
    if (!eventsUrl || !payload.exposure) return;
    const body = JSON.stringify(payload);
    try {
      if (navigator.sendBeacon(eventsUrl, new Blob([body], { type: "text/plain" }))) return;
    } catch (e) { /* no sendBeacon: use fetch */ }
    fetch(eventsUrl, { method: "POST", body, keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json" } }).catch(() => {});
  }

  // Capture phase: a shop's stopPropagation() must not hide clicks.
  document.addEventListener("click", (event) => {
    const target = event.target;
    const holder = target instanceof Element && target.closest(
      "[data-personalization-exposure]:not([data-personalization-exposure=''])");
    // The popup reports its own events (shown, dismissed, the signup itself).
    if (!holder || holder.hasAttribute("data-pzn-popup")) return;
    const payload = { type: "click", exposure: holder.getAttribute("data-personalization-exposure") };
    const item = target.closest("[data-personalization-product]");
    if (item && item.getAttribute("data-personalization-product")) {
      payload.product = item.getAttribute("data-personalization-product");
    }
    send(payload);
  }, true);

  const fragmentsUrl = (script && script.dataset.fragmentsUrl) || "";
  if (fragmentsUrl) {
    loadFragments(); // a page cached for everyone: its personal parts come from here
  } else {
    const root = document.querySelector("[data-pzn-popup]");
    if (root) popup(root);
  }

  // Once per page view, also without placeholders: this request is where the visit is
  // profiled (the page's address and referrer come with it) and the exposures are counted.
  function loadFragments() {
    const holders = Array.from(document.querySelectorAll("[data-pzn-fragment]"));
    const params = new URLSearchParams({ page: location.href, referrer: document.referrer,
      lang: document.documentElement.lang || "" });
    holders.forEach((holder) => params.append("f", holder.getAttribute("data-pzn-fragment")));
    fetch(fragmentsUrl + "?" + params, { credentials: "same-origin",
      headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((data) => {
        const html = data && Array.isArray(data.fragments) ? data.fragments : [];
        holders.forEach((holder, index) => {
          if (typeof html[index] === "string") holder.innerHTML = html[index];
        });
        const root = document.querySelector("[data-pzn-popup]");
        if (root) popup(root);
      })
      .catch(() => {}); // the fallbacks stay
  }

  function popup(root) {
    const $ = (selector) => root.querySelector(selector);
    const dialog = $("[role=dialog]");
    const form = $("[data-pzn-form]");
    const email = form && form.elements.namedItem("email");
    const signupUrl = root.dataset.pznSignupUrl || (script && script.dataset.signupUrl);
    if (!dialog || !email || !signupUrl) return;

    const exposure = root.dataset.personalizationExposure;
    const submit = form.querySelector("[type=submit]");
    const msg = (name, fallback) => root.getAttribute("data-pzn-msg-" + name) || fallback;
    const failed = () => msg("failed", "Something went wrong. Please try again.");
    let state = "waiting"; // -> "open" -> "closed": once per page
    let signedUp = false;
    let returnFocus = null;

    form.noValidate = true; // errors go to our live region, not the browser's bubble
    const timer = setTimeout(open, Math.max(0, parseInt(root.dataset.pznDelayMs, 10) || 0));
    if (root.dataset.pznExitIntent === "true" && matchMedia("(hover: hover) and (pointer: fine)").matches) {
      document.addEventListener("mouseout", onMouseOut);
    }

    function onMouseOut(event) {
      if (!event.relatedTarget && event.clientY <= 0) open(); // left through the top edge
    }

    function open() {
      if (state !== "waiting") return;
      state = "open";
      clearTimeout(timer);
      document.removeEventListener("mouseout", onMouseOut);
      returnFocus = document.activeElement;
      root.hidden = false;
      document.documentElement.classList.add("pzn-popup-open");
      document.addEventListener("keydown", onKeydown, true);
      document.addEventListener("focusin", onFocusIn, true);
      email.focus();
      send({ type: "popup_shown", exposure });
    }

    function close() {
      if (state !== "open") return;
      state = "closed";
      root.hidden = true;
      document.documentElement.classList.remove("pzn-popup-open");
      document.removeEventListener("keydown", onKeydown, true);
      document.removeEventListener("focusin", onFocusIn, true);
      if (!signedUp) send({ type: "popup_dismissed", exposure });
      if (returnFocus && returnFocus.focus && document.contains(returnFocus)) returnFocus.focus();
    }

    function focusables() {
      return Array.from(dialog.querySelectorAll(
        "a[href], button:not([disabled]), input:not([disabled]), select, textarea, [tabindex]:not([tabindex='-1'])"
      )).filter((el) => el.getClientRects().length > 0);
    }

    function onKeydown(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "Tab") {
        const items = focusables();
        const edge = event.shiftKey ? items[0] : items[items.length - 1];
        const active = document.activeElement;
        if (!items.length || active === edge || !dialog.contains(active)) {
          event.preventDefault();
          if (items.length) (event.shiftKey ? items[items.length - 1] : items[0]).focus();
        }
      }
    }

    function onFocusIn(event) {
      if (!dialog.contains(event.target)) (focusables()[0] || dialog).focus();
    }

    root.addEventListener("click", (event) => {
      if (event.target instanceof Element && event.target.closest("[data-pzn-close]")) close();
    });

    function fail(message, badEmail) {
      const status = $("[data-pzn-status]");
      status.textContent = message;
      status.classList.add("pzn-popup__status--error");
      if (badEmail) email.setAttribute("aria-invalid", "true");
      email.focus();
    }

    function errorOf(data) {
      const text = (value) => (Array.isArray(value) ? value.join(" ") : String(value));
      if (!data || typeof data !== "object") return "";
      const key = data.email ? "email" : data.detail ? "detail" : Object.keys(data)[0];
      return key ? text(data[key]) : "";
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      $("[data-pzn-status]").textContent = "";
      email.removeAttribute("aria-invalid");
      email.value = email.value.trim();
      if (!email.checkValidity()) {
        fail(msg("invalid", "Please enter a valid email address."), true);
        return;
      }
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      try {
        const token = form.elements.namedItem("csrfmiddlewaretoken");
        const consent = $("[data-pzn-consent]");
        const response = await fetch(signupUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json",
            "X-CSRFToken": token ? token.value : "" },
          body: JSON.stringify({ email: email.value, consent: consent ? consent.textContent.trim() : "" }),
        });
        const data = await response.json().catch(() => null);
        if (response.ok && data && data.coupon_code) showCoupon(data);
        else if (response.status === 429) fail(msg("throttled", "Too many attempts, try again later."));
        // 409: the address was signed up by someone else; the answer says so, without a coupon.
        else fail(errorOf(data) || failed(), response.status === 409 || Boolean(data && data.email));
      } catch (e) {
        fail(failed());
      } finally {
        submit.disabled = false;
        form.removeAttribute("aria-busy");
      }
    });

    function showCoupon(data) {
      signedUp = true;
      $("[data-pzn-code]").textContent = data.coupon_code;
      if (data.discount) $("[data-pzn-discount]").textContent = data.discount;
      const expires = new Date(data.expires_at || NaN);
      if (!isNaN(expires)) {
        const time = $("[data-pzn-expires]");
        time.dateTime = data.expires_at;
        try {
          time.textContent = expires.toLocaleDateString(document.documentElement.lang || [], { dateStyle: "long" });
        } catch (e) {
          time.textContent = expires.toLocaleDateString();
        }
        $("[data-pzn-expiry]").hidden = false;
      }
      if (data.referral_link) {
        $("[data-pzn-referral-link]").value = data.referral_link;
        $("[data-pzn-referral]").hidden = false;
      }
      $("[data-pzn-offer]").hidden = true;
      $("[data-pzn-success]").hidden = false;
      $("[data-pzn-success-title]").focus();
    }

    const copy = $("[data-pzn-copy]");
    const label = copy && copy.textContent;
    if (copy) copy.addEventListener("click", async () => {
      const code = $("[data-pzn-code]");
      try {
        await navigator.clipboard.writeText(code.textContent);
        copy.textContent = msg("copied", "Copied");
        setTimeout(() => { copy.textContent = label; }, 2000);
      } catch (e) {
        window.getSelection().selectAllChildren(code); // no clipboard access: ready for Ctrl+C
      }
    });
  }
})();
