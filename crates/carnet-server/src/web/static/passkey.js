// Passkeys (WebAuthn) in the web interface: the only script of Carnet's pages, a progressive
// enhancement. Without JavaScript (or without WebAuthn) its buttons stay hidden and everything
// works with the password and the one-time code. It talks to the JSON API the pages' own
// handlers use: /api/v1/auth/passkey/{begin,finish} to log in, /api/v1/me/passkeys/register/
// {begin,finish} to create one from a session (see crates/carnet-server/src/api/passkeys.rs).
'use strict';
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  const english = document.documentElement.lang === 'en';
  const say = (fr, en) => (english ? en : fr);
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const dec = (s) => Uint8Array.from(
    atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)),
    (c) => c.charCodeAt(0),
  );
  async function post(url, body) {
    const r = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body || {}),
    });
    if (!r.ok) throw new Error(String(r.status));
    return r.status === 204 ? null : r.json();
  }
  function status(text) {
    const s = document.getElementById('passkey-status');
    if (s) s.textContent = text;
  }

  const login = document.getElementById('passkey-login');
  if (login) {
    login.closest('[hidden]')?.removeAttribute('hidden');
    login.addEventListener('click', async () => {
      status(say('Utilisez votre clé d’accès…', 'Use your passkey…'));
      try {
        const { publicKey: o } = await post('/api/v1/auth/passkey/begin');
        const cred = await navigator.credentials.get({
          publicKey: { ...o, challenge: dec(o.challenge), allowCredentials: [] },
        });
        await post('/api/v1/auth/passkey/finish', {
          id: cred.id,
          response: {
            clientDataJSON: enc(cred.response.clientDataJSON),
            authenticatorData: enc(cred.response.authenticatorData),
            signature: enc(cred.response.signature),
          },
        });
        window.location.assign('/');
      } catch (e) {
        status(say(
          'La connexion par clé d’accès n’a pas abouti : réessayez, ou utilisez votre mot de passe et le code.',
          'Logging in with a passkey did not work: try again, or use your password and the code.',
        ));
      }
    });
  }

  const register = document.getElementById('passkey-register');
  if (register) {
    register.closest('[hidden]')?.removeAttribute('hidden');
    register.addEventListener('click', async () => {
      status(say('Créez la clé d’accès sur votre appareil…', 'Create the passkey on your device…'));
      try {
        const { publicKey: o } = await post('/api/v1/me/passkeys/register/begin');
        const cred = await navigator.credentials.create({
          publicKey: {
            ...o,
            challenge: dec(o.challenge),
            user: { ...o.user, id: dec(o.user.id) },
            excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: dec(c.id) })),
          },
        });
        await post('/api/v1/me/passkeys/register/finish', {
          id: cred.id,
          response: {
            clientDataJSON: enc(cred.response.clientDataJSON),
            attestationObject: enc(cred.response.attestationObject),
          },
        });
        window.location.assign('/mon-espace?ok=cle');
      } catch (e) {
        status(say(
          'La clé d’accès n’a pas été créée (annulée, ou déjà enregistrée sur cet appareil).',
          'The passkey was not created (cancelled, or already registered on this device).',
        ));
      }
    });
  }
})();
