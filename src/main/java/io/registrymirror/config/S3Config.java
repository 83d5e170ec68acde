package io.registrymirror.config;

import java.net.URI;

/**
 * The shared object storage tier: a bucket that every verified blob and manifest is written
 * through to, under its digest, and that a local miss reads before upstream. Credentials come
 * from the AWS SDK's default chain (environment, profile, web identity on EKS, instance role).
 *
 * @param endpoint the S3 API's URL; null for AWS itself
 * @param bucket the bucket, which must exist
 * @param region the bucket's region; null for the SDK's default (AWS_REGION, the profile)
 * @param pathStyle whether the bucket goes in the path rather than the host name, as most
 *     S3-compatible servers need
 */
public record S3Config(URI endpoint, String bucket, String region, boolean pathStyle) {}
