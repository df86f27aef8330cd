/** A static export: crm2's console plugin serves these files; no Node.js server in production. */
const config = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  poweredByHeader: false,
  // The type check runs as its own step (npm run typecheck) before the build.
  typescript: { ignoreBuildErrors: false },
};

export default config;
