// A real OpenID Connect provider for Carnet's end-to-end login tests, standing in for
// FranceConnect. It is panva/oidc-provider (certified implementation) with one client and one
// account; the login and consent interactions are approved automatically (the person "logs in").
// Settings come from the environment:
//   PORT            port on 127.0.0.1
//   REDIRECT_URI    Carnet's callback
//   ACCOUNT         JSON claims of the account, with "sub"
//   ACR             optional: the authentication context the login reports (Pro Santé
//                   Connect's "eidas1" / "eidas2")
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const account = JSON.parse(process.env.ACCOUNT);
const acr = process.env.ACR || undefined;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'carnet',
    client_secret: 'carnet-test-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    profile: ['given_name', 'family_name', 'birthdate', 'gender', 'preferred_username'],
    email: ['email'],
    birth: ['birthplace', 'birthcountry'],
    // Pro Santé Connect's user info: national id ("8" + RPPS) and practice situations.
    scope_all: ['SubjectNameID', 'SubjectRefPro'],
  },
  scopes: ['openid', 'profile', 'email', 'birth', 'scope_all'],
  acrValues: ['eidas1', 'eidas2'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ ...account, sub: id }) }),
});

const server = http.createServer(async (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: account.sub, acr } }, { mergeWithLastSubmission: false });
      } else {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        const d = details.prompt.details;
        if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
        if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
    return;
  }
  provider.callback()(req, res);
});
server.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
