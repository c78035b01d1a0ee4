import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for every operation in src/graphql/, generated into src/gql/ (committed).
// `npm run codegen` regenerates; `npm run codegen:check` fails when src/gql/ is out of date.
// CODEGEN_OUT redirects the output (used by the drift check).
const out = process.env.CODEGEN_OUT ?? './src/gql/';

const config: CodegenConfig = {
  schema: '../../schema/api.graphql',
  documents: ['src/graphql/**/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    [out]: {
      preset: 'client',
      presetConfig: {
        // Components read fields straight from the query result; no useFragment() masking.
        fragmentMasking: false,
      },
      config: {
        scalars: { Date: 'string', DateTime: 'string' },
        defaultScalarType: 'unknown',
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false, object: false, defaultValue: false },
        nonOptionalTypename: true,
        skipTypeNameForRoot: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
