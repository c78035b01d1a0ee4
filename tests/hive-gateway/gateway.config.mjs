// Hive Gateway (MIT), used by the tests to show a federated subscription end to end through an
// open-source federation gateway. The client's token goes to every subgraph over HTTP, and to
// notifications' graphql-ws endpoint in connection_init.
export const gatewayConfig = {
  transportEntries: {
    notifications: {
      options: {
        subscriptions: {
          kind: 'ws',
          location: '/ws',
          options: {
            connectionParams: { authorization: '{context.headers.authorization}' },
          },
        },
      },
    },
  },
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      return { authorization: request.headers.get('authorization') ?? '' };
    },
  },
};
